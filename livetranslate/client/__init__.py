"""Streaming gRPC client for `pipeline`: used by the CLI, clients/ and the dashboard."""

from __future__ import annotations

import collections
import dataclasses
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from livetranslate import protocol as P
from livetranslate.protocol import INTERIM_KINDS, Event, EventKind, SessionOptions

DEFAULT_URL = "localhost:8001"
KEEPALIVE_S = 30  # the launcher lets Triton accept pings this often (and more)
# Backpressure: at most this much audio is sent and not yet answered (each request's final
# response comes when the server has processed its audio, or, for a chunk that closed an
# utterance, when that utterance's translation is out). A file streamed without --realtime
# thus goes at the server's pace with flat memory on both sides; live capture waits in the
# capture buffer meanwhile.
WINDOW_S = 20.0
# The server answers a stream's first request within this time, or the stream gives up with
# a clear message (a server whose sequence slots are all taken queues new streams silently).
START_TIMEOUT_S = 30.0
# With several addresses each has this long to answer, so that a vanished host (whose packets
# go nowhere) does not hold up the others; a stopped server's port refuses at once anyway.
ADDRESS_TIMEOUT_S = 3.0


class ClientError(RuntimeError):
    """A problem the user can act on; the message says what and how."""


def _plain(exc: Exception) -> str:
    """A tritonclient exception as one readable line, without gRPC status dumps."""
    message = getattr(exc, "message", None)
    message = str(message() if callable(message) else (message or str(exc)))
    lowered = message.lower()
    if "restricted" in lowered and "header" in lowered:
        return ("the server refused the request: it needs an API key, and the one given is missing or wrong "
                f"(set {P.API_KEY_ENV} or use --api-key-file)")
    if "ssl" in lowered or "handshake" in lowered or "certificate" in lowered or "tls" in lowered:
        return ("secure connection failed: the server and client disagree about TLS "
                "(use --tls, and --ca with the server's CA certificate, when the server runs with TLS)")
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
            raise ClientError(f"--url {url!r}: unknown scheme {name}://; give the gRPC address as host:port, "
                              f"e.g. {DEFAULT_URL}")
        tls = tls or name in ("grpcs", "https")
        text = text[scheme.end():]
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


def _diagnose(url: str, tls: bool, exc: Exception) -> str:
    """Why a connection to `url` failed, in words a user can act on."""
    import socket

    http_port = (f"{url} answers HTTP: it is Triton's HTTP (or metrics) port, not its gRPC port. Point --url at "
                 f"the gRPC port ({_host_port(url)[0]}:8001 unless the server was started with another --grpc-port)")
    reason = _plain(exc)
    if reason.startswith(("the server refused the request", "the server is shutting down")):
        return reason  # the connection itself is fine
    try:
        socket.getaddrinfo(_host_port(url)[0], None)
    except OSError:
        return f"cannot reach the livetranslate server at {url}: no host named {_host_port(url)[0]!r} (check --url)"
    if not _port_open(url):
        return (f"cannot reach the livetranslate server at {url}: nothing answers there. "
                f"Is it running? Start it with `livetranslate serve`, or check --url")
    if _answers_http(url):
        return http_port
    if not tls and _speaks_tls(url):
        return (f"the server at {url} uses TLS: connect with --tls (and --ca with the CA certificate that signed "
                f"the server's)")
    if tls and not _speaks_tls(url):
        return f"the server at {url} does not use TLS: connect without --tls"
    if tls and reason.startswith("secure connection failed"):
        return (f"the server at {url} uses TLS but its certificate is not trusted: give --ca with the CA "
                f"certificate that signed it, and reach it by the host name the certificate names")
    return f"the server at {url} accepts connections but did not answer as a livetranslate server: {reason}"


def _read_events(events: queue.Queue, idle_timeout_s: float, last: tuple,
                 waiting: Callable[[], bool] = lambda: True) -> Iterator[Event]:
    """Events a stream callback queued, up to one of kind `last`; errors raised. Silence
    longer than `idle_timeout_s` is an error only while `waiting()` (an answer is due):
    a live capture of a quiet meeting gets no events for minutes, and that is fine."""
    while True:
        try:
            item = events.get(timeout=idle_timeout_s)
        except queue.Empty:
            if not waiting():
                continue
            raise ClientError(f"no answer from the server for {idle_timeout_s:.0f} s") from None
        if isinstance(item, Exception):
            raise item
        yield item
        if item.kind in last:
            return


class _Window:
    """Audio sent and not yet answered, by request id (see WINDOW_S)."""

    def __init__(self, most_samples: float):
        self.most = most_samples
        self._pending: dict[str, int] = {}
        self._ids = 0
        self._first_answered = False
        self._aborted = False
        self._cond = threading.Condition()

    def sending(self, samples: int) -> str:
        with self._cond:
            self._ids += 1
            self._pending[str(self._ids)] = samples
            return str(self._ids)

    def answered(self, request_id: str) -> None:
        with self._cond:
            self._pending.pop(request_id, None)
            self._first_answered = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    @property
    def unanswered_start(self) -> bool:
        return self._ids > 0 and not self._first_answered and not self._aborted

    def wait_for_room(self, samples: int, first_answer_s: float) -> bool:
        """Blocks while the window is full; False when the stream was aborted, or its first
        request got no answer in `first_answer_s`."""
        deadline = time.monotonic() + first_answer_s
        with self._cond:
            while not self._aborted:
                # until the first request is answered nothing else goes out: a server that
                # refuses the stream gets no more audio than its first chunk
                room = sum(self._pending.values()) + samples <= self.most
                if not self._pending or (self._first_answered and room):
                    return True
                if not self._first_answered and time.monotonic() > deadline:
                    return False
                self._cond.wait(0.5)
            return False


@dataclass
class StreamStats:
    chunks_sent: int = 0
    audio_s: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    accepted: bool = False  # the server answered the first request without ending or refusing the stream


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
        raise ClientError(f"--url {text!r}: {secure[0]} uses TLS and {plain[0]} does not; the servers of one "
                          f"list are reached the same way (with --tls, every address uses TLS)")
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


class PipelineClient:
    """A connection to the first of the addresses that answers (live, `pipeline` ready), tried
    in order: `addresses` (default: the connection's own order). `url` is the one it reached."""

    def __init__(self, url: str | Connection = DEFAULT_URL, timeout_s: float = 10.0,
                 addresses: Iterable[str] | None = None):
        import tritonclient.grpc as grpcclient

        self.connection = url if isinstance(url, Connection) else Connection(url)
        self._grpc = grpcclient
        if self.connection.ca and not os.access(self.connection.ca, os.R_OK):
            raise ClientError(f"cannot read the CA certificate {self.connection.ca}")
        order = tuple(addresses or self.connection.urls)
        each_s = timeout_s if len(order) == 1 else min(timeout_s, ADDRESS_TIMEOUT_S)
        reasons = []
        for address in order:
            try:
                self.client = self._open(address, each_s)
            except ClientError as exc:
                reasons.append(str(exc))
                continue
            self.url = address
            return
        if len(reasons) == 1:
            raise Unreachable(reasons[0])
        raise Unreachable(f"none of the {len(reasons)} servers answered:\n  " + "\n  ".join(reasons))

    def _open(self, url: str, timeout_s: float):
        """A client of the server at `url` once it is live with `pipeline` ready; ClientError
        saying why not."""
        grpcclient = self._grpc
        client = None
        try:
            # tritonclient reads root_certificates from this path itself
            client = grpcclient.InferenceServerClient(
                url=url, ssl=self.connection.tls, root_certificates=self.connection.ca,
                # finds a dead network within about a minute (the server allows pings every 10 s)
                keepalive_options=grpcclient.KeepAliveOptions(
                    keepalive_time_ms=KEEPALIVE_S * 1000, keepalive_timeout_ms=20_000,
                    keepalive_permit_without_calls=True, http2_max_pings_without_data=0),
            )
            live = client.is_server_live(client_timeout=timeout_s)
            ready = live and client.is_model_ready(P.PIPELINE, client_timeout=timeout_s,
                                                   headers=self.connection.headers)
        except Exception as exc:
            if client is not None:
                client.close()
            raise ClientError(_diagnose(url, self.connection.tls, exc)) from None
        if not ready:
            client.close()
            raise ClientError(f"the server at {url} is up but the `{P.PIPELINE}` model is not ready")
        return client

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def watch(self, session: str, idle_timeout_s: float = 3600.0, language: str | None = None) -> Iterator[Event]:
        """Follows a session as a viewer: its history, then live events, until `end`. With a
        `language` (a Whisper code; ProtocolError when unknown) the translations come in that
        language, made by the server while anyone watches in it; None: the speaker's target."""
        language = P.check_language(language) if language is not None else None
        return self._watch(session, idle_timeout_s, language)

    def _watch(self, session: str, idle_timeout_s: float, language: str | None) -> Iterator[Event]:
        events: queue.Queue = queue.Queue()
        self.client.start_stream(
            callback=lambda result, error: events.put(ClientError(_plain(error)) if error else
                                                      Event.from_tensors(result.as_numpy)),
            headers=self.connection.headers)
        tensor = self._grpc.InferInput(P.SUBSCRIBE, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([session.encode("utf-8")], dtype=np.object_))
        audio = self._grpc.InferInput(P.AUDIO, [0], "INT16")
        audio.set_data_from_numpy(np.zeros(0, np.int16))
        inputs = [audio, tensor]
        if language is not None:
            inputs.append(self._grpc.InferInput(P.TARGET_LANGUAGE, [1], "BYTES"))
            inputs[-1].set_data_from_numpy(np.array([language.encode()], dtype=np.object_))
        self.client.async_stream_infer(P.PIPELINE, inputs, sequence_id=random.randint(1, 2**63 - 1),
                                       sequence_start=True, sequence_end=True)
        ended = False
        try:
            # a viewer's own failure (no such session, dropped) comes as an `end` that
            # carries it in ERROR; errors in the history are just events
            for event in _read_events(events, idle_timeout_s, (EventKind.END,)):
                ended = ended or event.kind == EventKind.END
                yield event
        finally:
            # after `end` the stream closes as it should; cancelling a finished request
            # instead leaves it unreleased in Triton 2.51, and the server then cannot
            # unload `pipeline` when it stops (it waits out its exit timeout)
            self.client.stop_stream(cancel_requests=not ended)

    def sessions(self, action: str = "list", session: str = ""):
        """`sessions` model: the list of sessions, or one session's info and events."""
        import json

        inputs = []
        for name, value in ((P.ACTION, action), (P.SESSION, session)):
            tensor = self._grpc.InferInput(name, [1], "BYTES")
            tensor.set_data_from_numpy(np.array([value.encode("utf-8")], dtype=np.object_))
            inputs.append(tensor)
        try:
            result = self.client.infer(P.SESSIONS, inputs, headers=self.connection.headers)
        except Exception as exc:
            raise ClientError(_plain(exc).replace("sessions: ", "")) from None
        data = json.loads(P.decode_text(result.as_numpy(P.RESULT)))
        if action == "get":
            data["events"] = [Event(**{**e, "kind": EventKind(e["kind"])}) for e in data["events"]]
        return data

    def _inputs(self, audio: np.ndarray, options: SessionOptions | None):
        tensors = {P.AUDIO: np.ascontiguousarray(audio, dtype=np.int16)}
        if options is not None:
            tensors.update(options.to_tensors())
        inputs = []
        for name, value in tensors.items():
            dtype = "BYTES" if value.dtype == np.object_ else self._grpc.np_to_triton_dtype(value.dtype)
            tensor = self._grpc.InferInput(name, list(value.shape), dtype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        return inputs

    def stream(
        self,
        chunks: Iterable[np.ndarray],
        options: SessionOptions,
        *,
        realtime: bool = False,
        stats: StreamStats | None = None,
        idle_timeout_s: float = 120.0,
    ) -> Iterator[Event]:
        """Sends int16 chunks at `options.sample_rate` on one gRPC stream and yields events
        as they arrive, ending with the `end` event. Raises ClientError on a Triton error."""
        stats = stats or StreamStats()
        events: queue.Queue = queue.Queue()
        sequence_id = random.randint(1, 2**63 - 1)
        window = _Window(WINDOW_S * options.sample_rate)

        refused = threading.Event()  # the stream ended, or was refused for now, before it began

        def callback(result, error):
            if error is not None:
                window.abort()
                events.put(ClientError(_plain(error)))
                return
            response = result.get_response()
            event = Event.from_tensors(result.as_numpy) if response.outputs else None
            if event is not None and not stats.accepted and (event.kind == EventKind.END or passing_refusal(event)):
                refused.set()
            final = response.parameters.get("triton_final_response")
            if final is not None and final.bool_param:
                if response.id == "1" and not refused.is_set():  # the window numbers requests from 1
                    stats.accepted = True
                window.answered(response.id)
            if event is None:
                return
            if event.kind == EventKind.END:
                window.abort()  # refused, stopped or done: nothing more to send
            events.put(event)

        sent_all = threading.Event()
        send_error: list[Exception] = []

        def request(chunk: np.ndarray, first: bool, last: bool) -> None:
            request_id = window.sending(len(chunk))
            self.client.async_stream_infer(
                P.PIPELINE, self._inputs(chunk, options if first else None), request_id=request_id,
                sequence_id=sequence_id, sequence_start=first, sequence_end=last,
                enable_empty_final_response=True,
            )

        def send():
            try:
                stats.started = time.monotonic()
                first = True
                for chunk in chunks:
                    if realtime:  # pace: never ahead of the wall clock
                        ahead = stats.started + stats.audio_s - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                    if not window.wait_for_room(len(chunk), first_answer_s=START_TIMEOUT_S):
                        if window.unanswered_start:
                            events.put(ClientError(
                                f"the server did not accept the stream within {START_TIMEOUT_S:.0f} s: "
                                f"it is overloaded; try again later"))
                            return
                        break  # the stream ended early (refused or stopped): end the sequence
                    request(chunk, first, False)
                    first = False
                    stats.chunks_sent += 1
                    stats.audio_s += len(chunk) / options.sample_rate
                request(np.zeros(0, np.int16), first, True)
            except Exception as exc:  # surfaced to the reader below
                send_error.append(exc)
                events.put(ClientError(f"sending audio failed: {_plain(exc)}"))
            finally:
                sent_all.set()

        self.client.start_stream(callback=callback, headers=self.connection.headers)
        sender = threading.Thread(target=send, name="livetranslate-send", daemon=True)
        sender.start()
        ended = False
        try:
            # while audio is still going out, a dead connection shows as a gRPC error (keepalive
            # pings find a silent network drop); the idle limit is for the final flush
            for item in _read_events(events, idle_timeout_s, (EventKind.END,), waiting=sent_all.is_set):
                if item.kind == EventKind.END:
                    stats.finished = time.monotonic()
                    ended = True
                yield item
        finally:
            self.client.stop_stream(cancel_requests=not ended)


class AudioBuffer:
    """Between capture and network. A live source never waits: past `max_s` of audio the
    oldest is dropped and counted. A file source waits instead (nothing is lost)."""

    def __init__(self, rate: int, live: bool, max_s: float = 30.0):
        self.rate, self.live, self.max_samples = rate, live, int(max_s * rate)
        self._chunks: "collections.deque[np.ndarray]" = collections.deque()
        self._samples = 0
        self._cond = threading.Condition()
        self.finished = False
        self.dropped_s = 0.0

    def put(self, chunk: np.ndarray) -> None:
        with self._cond:
            if not self.live:
                self._cond.wait_for(lambda: self._samples < self.max_samples)
            self._chunks.append(chunk)
            self._samples += len(chunk)
            while self.live and self._samples > self.max_samples:
                old = self._chunks.popleft()
                self._samples -= len(old)
                self.dropped_s += len(old) / self.rate
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def unget(self, chunks: list[np.ndarray]) -> None:
        """Puts audio taken but not delivered (a server refused it) back ahead of the rest;
        past `max_s` a live source drops the oldest as usual."""
        with self._cond:
            self._chunks.extendleft(reversed(chunks))
            self._samples += sum(len(chunk) for chunk in chunks)
            while self.live and self._samples > self.max_samples:
                old = self._chunks.popleft()
                self._samples -= len(old)
                self.dropped_s += len(old) / self.rate
            self._cond.notify_all()

    def get(self, timeout: float) -> np.ndarray | None:
        with self._cond:
            self._cond.wait_for(lambda: self._chunks or self.finished, timeout)
            if not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._samples -= len(chunk)
            self._cond.notify_all()
            return chunk

    @property
    def buffered_s(self) -> float:
        return self._samples / self.rate


def level_dbfs(chunk: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(chunk.astype(np.float64) / 32768.0)))) if len(chunk) else 0.0
    return 20 * np.log10(max(rms, 1e-6))


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


class Refused(ClientError):
    """A server answered but did not take the stream (or viewer) now: see PASSING_REFUSALS."""


class _Lost(Exception):
    """A stream the server had accepted was lost: reconnect at once, a new outage begins."""


def _retrying(first: bool, retry: bool, addresses: int, give_up_after_s: float | None, max_backoff_s: float,
              on_status: Callable[[str], None]):
    """The tries of one outage. The first connection fails at once when no server answers (one
    that is not running is the user's to fix), and when each address was tried once; after a
    connection was lost, retry with backoff until `give_up_after_s` (None: never)."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, stop_never, wait_exponential

    later = stop_after_delay(give_up_after_s) if give_up_after_s else stop_never

    def stop(state) -> bool:
        if not retry:
            return True
        if first:
            return isinstance(state.outcome.exception(), Unreachable) or state.attempt_number >= addresses
        return later(state)

    def before_sleep(state) -> None:
        exc = state.outcome.exception()
        what = str(exc) if isinstance(exc, Refused) else f"cannot connect ({exc})"
        on_status(f"{what}; retrying in {state.next_action.sleep:.1f} s")

    return Retrying(wait=wait_exponential(multiplier=0.5, max=max_backoff_s),
                    retry=retry_if_exception_type(ClientError), stop=stop, reraise=True, before_sleep=before_sleep)


def _connected(client: PipelineClient, previous: str | None, session: str) -> str:
    moved = f" (moved from {previous})" if previous not in (None, client.url) else ""
    return f"connected to {client.url}, session {session}{moved}"


class ResilientSession:
    """A capture that survives server restarts, drains and network drops: it reconnects with
    exponential backoff and continues the same session (new sequence, same name, segment
    numbers and clock go on). With several addresses it goes on at the one after the address
    it lost (round robin), and leaves a server that refuses the stream for now to the next.
    Audio captured meanwhile waits in a bounded buffer; what overflows is dropped and reported,
    never silently; audio a refusing server took goes back to the buffer."""

    def __init__(self, connection: Connection, options: SessionOptions, *, on_event, on_status,
                 reconnect: bool = True, max_buffer_s: float = 30.0, max_backoff_s: float = 8.0,
                 give_up_after_s: float | None = None):
        self.connection, self.options, self.reconnect = connection, options, reconnect
        self.on_event, self.on_status = on_event, on_status
        self.max_buffer_s, self.max_backoff_s, self.give_up_after_s = max_buffer_s, max_backoff_s, give_up_after_s
        self.stop = threading.Event()  # Ctrl-C: stop capturing, flush, end
        self.level = -120.0
        self.reconnects = 0
        self.address: str | None = None  # the server of the latest stream

    def _capture(self, source, buffer: AudioBuffer) -> None:
        reported, overflows = 0.0, 0
        try:
            for chunk in source:
                if self.stop.is_set():
                    break
                self.level = level_dbfs(chunk)
                buffer.put(chunk)
                if buffer.dropped_s - reported >= 1.0:
                    reported = buffer.dropped_s
                    self.on_status(f"warning: buffer full, dropped {buffer.dropped_s:.1f} s of audio so far")
                if getattr(source, "overflows", 0) > overflows:
                    overflows = source.overflows
                    self.on_status(f"warning: the audio device dropped input {overflows} time(s): "
                                   f"the machine is too busy to read it in time")
        finally:
            buffer.finish()

    def run(self, source) -> None:
        buffer = AudioBuffer(source.rate, source.live, self.max_buffer_s)
        threading.Thread(target=self._capture, args=(source, buffer), name="capture", daemon=True).start()
        first = True
        while True:
            try:
                for attempt in _retrying(first, self.reconnect, len(self.connection.urls), self.give_up_after_s,
                                         self.max_backoff_s, self.on_status):
                    with attempt:
                        self._stream(source, buffer)
                return
            except _Lost:
                first = False

    def _stream(self, source, buffer: AudioBuffer) -> None:
        """One stream, on the first server that answers from the address after the latest.
        Returns when the session ended. Raises ClientError when the stream was refused or lost
        before the server accepted it (its audio back in the buffer), _Lost when it was lost
        after (ClientError without `reconnect`)."""
        client = PipelineClient(self.connection, addresses=self.connection.after(self.address))
        self.on_status(_connected(client, self.address, self.options.session))
        self.address = client.url
        stats = StreamStats()
        lock = threading.Lock()
        taking, sent_s = True, 0.0
        unaccepted: list[np.ndarray] = []  # audio taken before the server accepted the stream

        def audio():
            nonlocal sent_s
            while True:
                with lock:  # nothing is taken once the stream failed
                    if not taking:
                        return
                    chunk = buffer.get(timeout=0.2)
                    if chunk is not None:
                        if stats.accepted:
                            unaccepted.clear()
                        else:
                            unaccepted.append(chunk)
                        sent_s += len(chunk) / source.rate
                if chunk is None:
                    if buffer.finished:
                        return
                    continue
                yield chunk

        try:
            for event in client.stream(audio(), dataclasses.replace(self.options, sample_rate=source.rate),
                                       stats=stats):
                refusal = passing_refusal(event)
                if refusal:  # stopping, full, or the session is still held elsewhere
                    raise Refused(f"{client.url} refused the stream: {refusal}" if not stats.accepted else refusal)
                if event.kind == EventKind.TRANSCRIPT:
                    self.options = dataclasses.replace(self.options, segment_base=event.segment_id + 1)
                self.on_event(event)
            return
        except ClientError as exc:
            with lock:
                taking = False
                returned = [] if stats.accepted else list(unaccepted)
            buffer.unget(returned)
            sent_s -= sum(len(chunk) for chunk in returned) / source.rate
            self.options = dataclasses.replace(self.options, time_base_s=self.options.time_base_s + sent_s)
            if not stats.accepted or not self.reconnect:
                raise
            self.reconnects += 1
            self.on_status(f"connection lost ({exc}); reconnecting, audio is buffered "
                           f"(up to {self.max_buffer_s:.0f} s)")
            raise _Lost() from exc
        finally:
            with lock:
                taking = False
            client.close()


def follow(connection: Connection, session: str, on_event: Callable[[Event], None], *, language: str | None = None,
           on_status: Callable[[str], None] = lambda message: None, idle_timeout_s: float = 3600.0,
           max_backoff_s: float = 8.0, give_up_after_s: float | None = None) -> None:
    """Follows a session as a viewer until its `end` (PipelineClient.watch). With several
    addresses it survives the loss of its server (a crash, a drain) as a speaker does: it
    subscribes again at the next address. The new subscription replays the session's stored
    history: what `on_event` already had is skipped, counted by content (kind, segments,
    language, text, error), so each stored event comes once and the ones missed meanwhile come
    too. Partials are never stored, so never replayed. Counts, not a set: two equal events
    are two events."""
    several = len(connection.urls) > 1
    delivered: collections.Counter = collections.Counter()
    address: str | None = None

    def subscribe() -> None:
        nonlocal address
        client = PipelineClient(connection, addresses=connection.after(address))
        if address is not None:
            on_status(_connected(client, address, session))
        address = client.url
        replayed: collections.Counter = collections.Counter()
        answered = False
        with client:
            try:
                for event in client.watch(session, idle_timeout_s, language):
                    refusal = passing_refusal(event) if several else ""
                    if refusal:
                        raise Refused(f"{client.url} refused the viewer: {refusal}" if not answered else refusal)
                    answered = True
                    if event.kind not in INTERIM_KINDS:
                        key = (event.kind, event.segment_id, event.first_segment_id, event.language, event.text,
                               event.error)
                        replayed[key] += 1
                        if replayed[key] <= delivered[key]:
                            continue
                        delivered[key] += 1
                    on_event(event)
            except ClientError as exc:
                if not answered or not several:
                    raise
                on_status(f"connection lost ({exc}); following the session on another server")
                raise _Lost() from exc

    first = True
    while True:
        try:
            for attempt in _retrying(first, several, len(connection.urls), give_up_after_s, max_backoff_s, on_status):
                with attempt:
                    subscribe()
            return
        except _Lost:
            first = False
