"""Reaching a server: addresses (several, for replicas), TLS, the key, and plain words for
why a server cannot be reached."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from livetranslate import protocol as P
from livetranslate.protocol import Event, EventKind
from livetranslate.settings import VARIABLES

DEFAULT_URL: str = VARIABLES["LIVETRANSLATE_URL"].default


KEEPALIVE_S = 30  # the launcher lets Triton accept pings this often (and more)


# With several addresses each has this long to answer, so that a vanished host (whose packets
# go nowhere) does not hold up the others; a stopped server's port refuses at once anyway.
ADDRESS_TIMEOUT_S = 3.0


class ClientError(RuntimeError):
    """A problem the user can act on; the message says what and how."""


def plain(exc: Exception) -> str:
    """A tritonclient exception as one readable line, without gRPC status dumps."""
    message = getattr(exc, "message", None)
    message = str(message() if callable(message) else (message or str(exc)))
    lowered = message.lower()
    if "restricted" in lowered and "header" in lowered:
        return (
            "the server refused the request: it needs an API key, and the one given is missing or wrong "
            f"(set {P.API_KEY_ENV} or use --api-key-file)"
        )
    if "ssl" in lowered or "handshake" in lowered or "certificate" in lowered or "tls" in lowered:
        return (
            "secure connection failed: the server and client disagree about TLS "
            "(use --tls, and --ca with the server's CA certificate, when the server runs with TLS)"
        )
    if "must specify the START flag" in message:  # its sequence was ended by a stopping server
        return "the server ended this stream: it stopped or restarted"
    if "server exiting" in lowered or "has no available versions" in lowered:
        return "the server is shutting down (or still starting)"
    import re

    return re.sub(r"^\[StatusCode\.[A-Z_]+\] ", "", message.strip()).strip()


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.rpartition(":")
    return host.strip("[]") or "localhost", int(port)


def _port_open(url: str, timeout_s: float = 2.0) -> bool:
    """Whether something listens at host:port (to tell "not running" from "speaks TLS")."""
    import socket

    try:
        with socket.create_connection(_host_port(url), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _answers_http(url: str, timeout_s: float = 2.0) -> bool:
    """Whether the port answers a plain HTTP/1.1 request (Triton's HTTP or metrics port)."""
    import socket

    try:
        with socket.create_connection(_host_port(url), timeout=timeout_s) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: livetranslate\r\nConnection: close\r\n\r\n")
            return sock.recv(5) == b"HTTP/"
    except (OSError, ValueError):
        return False


def _speaks_tls(url: str, timeout_s: float = 2.0) -> bool:
    """Whether the port completes a TLS handshake (its certificate not checked: only the protocol)."""
    import socket
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(_host_port(url), timeout=timeout_s) as sock:
            with context.wrap_socket(sock, server_hostname=_host_port(url)[0]):
                return True
    except (OSError, ValueError):
        return False


def normalize_url(url: str, tls: bool = False) -> tuple[str, bool]:
    """`host:port` for gRPC, and whether to use TLS, from what users write: `host`, `host:port`,
    `grpc://host:port`, `http://host:port` (plain) or `grpcs://` / `https://` (TLS)."""
    import re

    text = url.strip()
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme:
        name = scheme.group(1).lower()
        if name not in ("grpc", "http", "grpcs", "https"):
            raise ClientError(
                f"--url {url!r}: unknown scheme {name}://; give the gRPC address as host:port, e.g. {DEFAULT_URL}"
            )
        tls = tls or name in ("grpcs", "https")
        text = text[scheme.end() :]
    address, _, path = text.partition("/")
    if path.strip("/"):
        raise ClientError(f"--url {url!r}: a gRPC address has no path; give host:port, e.g. {DEFAULT_URL}")
    host, port = address, ""
    if address.startswith("["):  # [::1]:8001
        host, _, rest = address.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else rest
    elif address.count(":") == 1:
        host, port = address.split(":")
    if not host or host == "[]":
        raise ClientError(f"--url {url!r}: no host; give host:port, e.g. {DEFAULT_URL}")
    if not port:
        port = DEFAULT_URL.rpartition(":")[2]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ClientError(f"--url {url!r}: the port must be a number from 1 to 65535, e.g. {DEFAULT_URL}")
    return f"{host}:{int(port)}", tls


def diagnose(url: str, tls: bool, exc: Exception) -> str:
    """Why a connection to `url` failed, in words a user can act on."""
    import socket

    http_port = (
        f"{url} answers HTTP: it is Triton's HTTP (or metrics) port, not its gRPC port. Point --url at "
        f"the gRPC port ({_host_port(url)[0]}:8001 unless the server was started with another --grpc-port)"
    )
    reason = plain(exc)
    if reason.startswith(("the server refused the request", "the server is shutting down")):
        return reason  # the connection itself is fine
    try:
        socket.getaddrinfo(_host_port(url)[0], None)
    except OSError:
        return f"cannot reach the livetranslate server at {url}: no host named {_host_port(url)[0]!r} (check --url)"
    if not _port_open(url):
        return (
            f"cannot reach the livetranslate server at {url}: nothing answers there. "
            f"Is it running? Start it with `livetranslate serve`, or check --url"
        )
    if _answers_http(url):
        return http_port
    if not tls and _speaks_tls(url):
        return (
            f"the server at {url} uses TLS: connect with --tls (and --ca with the CA certificate that signed "
            f"the server's)"
        )
    if tls and not _speaks_tls(url):
        return f"the server at {url} does not use TLS: connect without --tls"
    if tls and reason.startswith("secure connection failed"):
        return (
            f"the server at {url} uses TLS but its certificate is not trusted: give --ca with the CA "
            f"certificate that signed it, and reach it by the host name the certificate names"
        )
    return f"the server at {url} accepts connections but did not answer as a livetranslate server: {reason}"


def normalize_urls(text: str, tls: bool = False) -> tuple[tuple[str, ...], bool]:
    """The addresses in `text`, one or several separated by commas (replicas that share
    sessions), each as `normalize_url` writes it, in order and without repeats; and whether to
    use TLS, which holds for all of them."""
    import re

    entries = [entry.strip() for entry in text.split(",") if entry.strip()]  # `a,b,` is fine
    if not entries:
        raise ClientError(f"--url {text!r}: no host; give host:port, e.g. {DEFAULT_URL}")
    if len(entries) == 1:
        url, tls = normalize_url(entries[0], tls)
        return (url,), tls
    urls: list[str] = []
    secure, plain = [], []
    for entry in entries:
        url, entry_tls = normalize_url(entry, False)
        if entry_tls:
            secure.append(entry)
        elif re.match(r"(grpc|http)://", entry, re.IGNORECASE):
            plain.append(entry)
        if url not in urls:
            urls.append(url)
    if secure and plain:
        raise ClientError(
            f"--url {text!r}: {secure[0]} uses TLS and {plain[0]} does not; the servers of one "
            f"list are reached the same way (with --tls, every address uses TLS)"
        )
    return tuple(urls), tls or bool(secure)


@dataclass(frozen=True)
class Connection:
    """Where the servers are and how to talk to them. `url` names one gRPC address, or
    several separated by commas (replicas that share sessions): a client uses the first
    that answers, and after losing one goes on with the next (`after`)."""

    url: str = DEFAULT_URL
    tls: bool = False
    ca: str | None = None  # PEM file of the CA that signed the server's certificate
    api_key: str | None = None
    urls: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):  # `http://host:8001`, `host` alone: what users write (ClientError if unusable)
        urls, tls = normalize_urls(self.url, self.tls)
        object.__setattr__(self, "urls", urls)
        object.__setattr__(self, "url", ",".join(urls))
        object.__setattr__(self, "tls", tls)

    @property
    def headers(self) -> dict[str, str] | None:
        return {P.GRPC_API_KEY_HEADER: self.api_key} if self.api_key else None

    def after(self, address: str | None) -> tuple[str, ...]:
        """Every address, starting with the one after `address` (round robin; the one given
        comes last); from the first when `address` is None or not one of them."""
        if address not in self.urls:
            return self.urls
        next_one = self.urls.index(address) + 1
        return self.urls[next_one:] + self.urls[:next_one]


class Unreachable(ClientError):
    """No server at any of the connection's addresses answered as a livetranslate server."""


# What a server says when it will not take a stream (or a viewer) now, though another server,
# or this one a moment later, will: it is stopping (a drain), it is full, or the session is
# still live on another server (whose lease on it has not run out: after a crash, the client
# asking is the one that was there), or it closed the stream after a long stretch without
# audio (a capture that stalled). A client with somewhere to go moves on instead of ending.
PASSING_REFUSALS = ("shutting down", "server full", "live on another server", "reconnect to go on")


def passing_refusal(event: Event) -> str:
    """The message of an `error` or `end` event that is a passing refusal; '' for any other.
    Servers mark theirs (an `end` whose text is P.RETRY_ELSEWHERE); the phrases are for an
    `error` and for servers that do not mark them yet."""
    if event.kind == EventKind.END and event.text == P.RETRY_ELSEWHERE and event.error:
        return event.error
    message = {EventKind.END: event.error, EventKind.ERROR: event.text}.get(event.kind, "")
    return message if any(phrase in message for phrase in PASSING_REFUSALS) else ""


def stop_stream(client, cancel: bool) -> None:
    """tritonclient's InferenceServerClient.stop_stream, without its thread leak: a cancelled
    stream (tritonclient 2.x) never ends its request iterator, so gRPC's thread that feeds the
    stream waits on it forever, one thread per cancelled stream (thousands in a long-lived
    dashboard or under an attack). Ending the iterator lets that thread go."""
    stream = getattr(client, "_stream", None)
    client.stop_stream(cancel_requests=cancel)
    queue = getattr(stream, "_request_queue", None)
    if cancel and queue is not None:
        queue.put(None)  # what a graceful close puts there: the end of the requests
