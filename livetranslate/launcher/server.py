"""A running tritonserver process: started, watched, drained and stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from livetranslate import protocol as P
from livetranslate import settings
from livetranslate.client.connection import stop_stream
from livetranslate.launcher.binaries import (
    ServerError,
    prepare_backends,
    settled,
    system_triton,
)
from livetranslate.launcher.options import (
    DRAIN_SEQUENCE_ID,
    DRAIN_TIMEOUT_S,
    ENTRY_MODEL,
    EXIT_MARGIN_S,
    LOOPBACK,
    MODELS,
    PROFILE_MODELS,
    ServerOptions,
)


class TritonServer:
    """A running tritonserver process; a context manager that stops it on exit."""

    def __init__(self, options: ServerOptions | None = None, log_file: Path | None = None):
        self.options = options if options is not None else ServerOptions()  # made here: it reads the settings
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_after_s: float | None = None
        self.draining = False  # stop() has begun: not ready for new clients any more
        self._hurry = threading.Event()  # end the drain's grace now
        self._group: int | None = None  # tritonserver's process group (its stubs are in it)
        self._settings_dir: Path | None = None  # the models' hand-off file (settings.write_handoff)

    @property
    def connect_host(self) -> str:
        """Where the launcher itself reaches the server."""
        return LOOPBACK if self.options.host in ("0.0.0.0", "::", "localhost") else self.options.host

    @property
    def grpc_url(self) -> str:
        return f"{self.connect_host}:{self.options.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.connect_host}:{self.options.http_port}"

    def start(self) -> TritonServer:
        import socket

        for port in (self.options.grpc_port, self.options.http_port, self.options.metrics_port):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.connect_host, port))
                except OSError:
                    raise ServerError(
                        f"port {port} is in use: is another server running? "
                        f"Choose other ports (--grpc-port, --http-port, --metrics-port)"
                    ) from None
        from livetranslate.launcher.native import NativeBuildError, hide_secrets_library
        from livetranslate.launcher.shm import remove_stale_regions

        remove_stale_regions()

        backends = triton[1] if (triton := system_triton()) else prepare_backends(self.options.cache_dir)
        cmd = self.options.command(backends)
        env = self.options.environment()
        env[settings.SETTINGS_FILE] = str(self._write_handoff())
        try:
            shim = hide_secrets_library(self.options.cache_dir)
        except NativeBuildError as exc:
            raise ServerError(str(exc)) from None
        env["LD_PRELOAD"] = " ".join(filter(None, [str(shim), env.get("LD_PRELOAD")]))
        env.update(self.options.secrets())
        if self.log_file:
            Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else None
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        self._group = self.process.pid  # a session, so a process group, of its own
        return self

    def _write_handoff(self) -> Path:
        """The models' settings, in a file only this user reads, removed when Triton stops."""
        if self._settings_dir is None:
            self._settings_dir = Path(tempfile.mkdtemp(prefix="livetranslate-settings-"))
        return settings.write_handoff(self.options.handoff(), self._settings_dir / "settings.json")

    def _headers(self) -> dict[str, str]:
        from livetranslate.protocol import ADMIN_KEY_HEADER, API_KEY_HEADER

        headers = {ADMIN_KEY_HEADER: self.options.effective_admin_key}
        if self.options.api_key:
            headers[API_KEY_HEADER] = self.options.api_key
        return headers

    def admin_headers(self, grpc: bool = True) -> dict[str, str]:
        """What the launcher (and its tests) send for admin APIs such as statistics."""
        from livetranslate.protocol import ADMIN_KEY_HEADER, GRPC_HEADER_PREFIX

        return {(GRPC_HEADER_PREFIX if grpc else "") + ADMIN_KEY_HEADER: self.options.effective_admin_key}

    def _get(self, path: str) -> int:
        try:
            request = urllib.request.Request(f"{self.http_url}{path}", headers=self._headers())
            with urllib.request.urlopen(request, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0

    def is_ready(self) -> bool:
        return self._get(f"/v2/models/{ENTRY_MODEL}/ready") == 200

    def readiness(self) -> tuple[bool, str]:
        """Whether this server takes new clients, and why not: a load balancer's question.
        Triton's own readiness stays true while the server drains; this one does not."""
        if self.draining:
            return False, "draining: this server is shutting down"
        if self.process is None or self.process.poll() is not None:
            return False, "tritonserver is not running"
        if self.ready_after_s is None:
            return False, "starting: the models are loading"
        if not self.is_ready():
            return False, f"the {ENTRY_MODEL} model is not ready"
        return True, "ready"

    def hurry(self) -> None:
        """Ends a stop's grace now (a second Ctrl-C or SIGTERM): the live streams are ended
        (moved on) without waiting for them."""
        self._hurry.set()

    def model_states(self) -> dict[str, str]:
        """READY / UNAVAILABLE (with the reason) for each model, from the repository index."""
        import json

        request = urllib.request.Request(
            f"{self.http_url}/v2/repository/index", data=b"{}", method="POST", headers=self._headers()
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                index = json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError):
            return {}
        return {m["name"]: m.get("state", "") + (f" ({m['reason']})" if m.get("reason") else "") for m in index}

    def failed_models(self) -> dict[str, str]:
        """The profile's models that are not ready (the index also lists the other profile's folders)."""
        wanted = PROFILE_MODELS.get(self.options.profile, MODELS)
        return {
            name: state
            for name, state in self.model_states().items()
            if name in wanted and not state.startswith("READY")
        }

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of Triton's log file, for a message about why it stopped."""
        if self.log_file is None:  # its output went to the terminal
            return ""
        try:
            with open(self.log_file, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def exit_message(self, when: str) -> str:
        """Triton exited on its own: its code, where the log is, and the log's last lines."""
        assert self.process is not None  # called once the started process has exited
        message = f"tritonserver exited with code {self.process.returncode} {when}"
        if self.log_file:
            tail = self.log_tail()
            message += f"; its log is {self.log_file}" + (f", ending:\n{tail}" if tail else "")
        return message

    def wait_ready(self, timeout_s: float = 300.0) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(self.exit_message("while starting"))
            states = self.model_states()
            if settled(states) and self.is_ready() and self._get("/v2/health/live") == 200:
                self.ready_after_s = time.monotonic() - self.started_at
                return self.ready_after_s
            # without the pipeline nothing works: say why now, not at the timeout
            if settled(states) and states.get(P.PIPELINE, "").startswith("UNAVAILABLE"):
                raise ServerError(f"the {P.PIPELINE} model did not load: {states[P.PIPELINE]}")
            time.sleep(0.25)
        raise ServerError(f"tritonserver not ready after {timeout_s:.0f} s")

    def drain(
        self, grace_s: float = 0.0, timeout_s: float = DRAIN_TIMEOUT_S, say: Callable[[str], None] = lambda _: None
    ) -> bool:
        """Asks `pipeline` to refuse new speakers and viewers at once, to let the live streams
        run for `grace_s` (less when the last one ends, or after hurry()), then to end
        everything it holds (viewers told why, streams moved on, every open sequence ended),
        so that Triton, which waits for open sequences when it stops, finds none. `say` gets
        the pipeline's word that it refuses. True when it drained in time."""
        # One piece: one gRPC stream whose request, answers and deadline belong together; split,
        # the deadline would have to be carried through each part.
        import queue

        import numpy as np
        import tritonclient.grpc as grpcclient

        from livetranslate.protocol import (
            AUDIO,
            DRAIN,
            DRAIN_GRACE_S,
            GRPC_API_KEY_HEADER,
            INTERNAL_PARAMETER,
            PIPELINE,
            Event,
            EventKind,
        )

        answers: queue.Queue = queue.Queue()
        headers = {GRPC_API_KEY_HEADER: self.options.api_key} if self.options.api_key else None
        try:
            client = grpcclient.InferenceServerClient(self.grpc_url, **self._tls_client_options())
        except Exception:
            return False
        sent = answered = 0  # requests sent; their last answers (`end`, or an `error`)
        failed = False

        def send(grace: float) -> None:
            nonlocal sent
            inputs = [
                grpcclient.InferInput(AUDIO, [0], "INT16"),
                grpcclient.InferInput(DRAIN, [1], "BOOL"),
                grpcclient.InferInput(DRAIN_GRACE_S, [1], "FP32"),
            ]
            inputs[0].set_data_from_numpy(np.zeros(0, np.int16))
            inputs[1].set_data_from_numpy(np.array([True]))
            inputs[2].set_data_from_numpy(np.array([grace], np.float32))
            client.async_stream_infer(
                PIPELINE,
                inputs,
                sequence_id=DRAIN_SEQUENCE_ID - sent,
                sequence_start=True,
                sequence_end=True,
                parameters={INTERNAL_PARAMETER: self.options.internal_token},
            )
            sent += 1

        deadline = time.monotonic() + grace_s + timeout_s
        try:
            client.start_stream(callback=lambda result, error: answers.put(error or result), headers=headers)
            send(grace_s)
            while answered < sent:
                if self._hurry.is_set() and sent == 1:  # a drain without grace cuts the first one's short
                    send(0.0)
                    deadline = min(deadline, time.monotonic() + timeout_s)
                try:
                    answer = answers.get(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
                except queue.Empty:
                    if time.monotonic() >= deadline:
                        break
                    continue
                if isinstance(answer, Exception):
                    break
                event = Event.from_tensors(answer.as_numpy)
                if event.kind in (EventKind.END, EventKind.ERROR):
                    answered += 1
                    failed = failed or event.kind == EventKind.ERROR or bool(event.error)
                if event.kind == EventKind.ERROR:
                    say(f"the drain failed: {event.text}")
                elif event.kind == EventKind.PARTIAL:
                    say(event.text)
        except Exception:  # the server went away or answered nonsense: not drained
            failed = True
        answered_all = sent > 0 and answered == sent
        # a request cancelled after its last answer stays unreleased in Triton 2.51 (and
        # `pipeline` could not unload): close the stream normally when it answered
        stop_stream(client, cancel=not answered_all)
        client.close()
        return answered_all and not failed

    def _tls_client_options(self) -> dict:
        """How the launcher itself reaches a TLS server: trusting its own certificate, under
        the name the certificate gives."""
        if not self.options.tls_cert:
            return {}
        import ssl

        # the stdlib's own PEM reader, private: typeshed does not declare it
        cert = ssl._ssl._test_decode_cert(str(self.options.tls_cert))  # type: ignore[attr-defined]  # noqa: SLF001
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        names += [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
        options = {"ssl": True, "root_certificates": str(self.options.tls_cert)}
        if names:
            options["channel_args"] = [("grpc.ssl_target_name_override", names[0])]
        return options

    def stop(self, timeout_s: float = 30.0, say: Callable[[str], None] = lambda _: None) -> float:
        """Drains `pipeline` (when the server got ready: new clients refused at once, the
        live streams given the grace), then SIGTERM (Triton unloads the models and exits),
        SIGKILL after `timeout_s`; the seconds it took. At most stop_bound_s()."""
        self.draining = True
        if self.process is None:
            return 0.0
        if self.process.poll() is not None:  # it died on its own: its stub processes may live on
            self._end_group()
            return 0.0
        began = time.monotonic()
        if self.ready_after_s is not None:
            self.drain(self.options.drain_grace_s, say=say)
        self.process.send_signal(signal.SIGTERM)
        try:
            # past its exit timeout Triton says it exits "immediately" but may still wait
            # for a model that could not unload (a client that keeps a finished stream open)
            self.process.wait(min(timeout_s, self.options.exit_timeout_s + EXIT_MARGIN_S))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._end_group()
        return time.monotonic() - began

    def _end_group(self) -> None:
        """What is left of Triton's process group once tritonserver has exited: a stub process
        whose Triton died (or that hung in its finalize) lives on as an orphan, holding its
        memory and its shared memory, unless it is ended. The models' settings go with it."""
        if self._settings_dir is not None:
            shutil.rmtree(self._settings_dir, ignore_errors=True)
            self._settings_dir = None
        if self._group is None or self._group == os.getpgrp():  # never the launcher's own group
            return
        try:
            os.killpg(self._group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def restarting(self) -> None:
        """Triton died on its own: what is left of its process group (stub processes) goes,
        with the shared memory they held, and the next start() begins afresh (not ready until
        its models are loaded again)."""
        from livetranslate.launcher.shm import remove_stale_regions

        if self.process is not None:
            self._end_group()
            time.sleep(1.0)  # the killed stubs unmap their regions
        remove_stale_regions(min_age_s=5.0)  # ours are as old as the server; a new one maps its own at once
        self.ready_after_s = None

    def kill(self) -> None:
        """kill -9 of the whole process group (server and stubs), for crash tests."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
