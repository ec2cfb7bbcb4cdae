"""The launcher's own health endpoint, for load balancers and Kubernetes probes.

Triton's /v2/health/ready stays true while a stopping server drains, so a load balancer
that asks Triton keeps sending it new clients. `serve --health-port` answers from the
launcher, which knows it is stopping:

    GET /ready   200 when Triton's `pipeline` is ready and the server is not draining, else 503
    GET /live    200 while the launcher runs (it stops Triton, and exits, when Triton dies)

The body is one line that says why. No key: like Triton's health, it tells nothing but that.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable

HEALTH_PORT_ENV = "LIVETRANSLATE_HEALTH_PORT"


class HealthServer:
    """A small HTTP server in a thread of its own; `readiness()` -> (ready, why)."""

    def __init__(self, host: str, port: int, readiness: Callable[[], tuple[bool, str]]):
        self.readiness = readiness
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "livetranslate-health"
            sys_version = ""

            def _answer(self, body: bool) -> None:
                if self.path == "/live":
                    status, text = 200, "live"
                elif self.path == "/ready":
                    try:
                        ready, text = outer.readiness()
                    except Exception as exc:  # a probe gets an answer, never a dropped connection
                        ready, text = False, f"readiness unknown: {exc}"
                    status = 200 if ready else 503
                else:
                    status, text = 404, "not found: /ready or /live"
                data = (text + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server's names)
                self._answer(body=True)

            def do_HEAD(self):  # noqa: N802
                self._answer(body=False)

            def log_message(self, *args):  # probes every few seconds would flood the terminal
                pass

        server_class = http.server.ThreadingHTTPServer
        if ":" in host:  # an IPv6 address, as --host takes one
            import socket

            class ThreadingHTTPServer6(http.server.ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = ThreadingHTTPServer6
        self._server = server_class((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
