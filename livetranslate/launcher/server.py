"""Starts the Triton server shipped in the nvidia-pytriton wheel on our model repository.

The wheel carries `tritonserver`, the Python backend and one backend stub per Python
version. The stub must match the Python that runs the models, and it picks its prefix from
the first `python3` on PATH: so the launcher copies the backend into a writable folder with
the right stub and starts Triton with this environment's `bin/` first on PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from livetranslate import protocol as P
from livetranslate.weights.catalog import LLM_ENV, MODELS_DIR_ENV, default_models_dir
from livetranslate.protocol import ADMIN_KEY_ENV as ADMIN_KEY_ENV_NAME
from livetranslate.protocol import API_KEY_ENV as API_KEY_ENV_NAME
from livetranslate.protocol import DEFAULT_DRAIN_GRACE_S
from livetranslate.protocol import INTERNAL_TOKEN_ENV as INTERNAL_TOKEN_ENV_NAME
from livetranslate.store import DATA_DIR_ENV, STORE_ENV, default_data_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_REPOSITORY = PROJECT_ROOT / "model_repository"
PROFILES = ("cpu", "gpu")
# Models every profile loads; the gpu profile swaps their configs (configs/gpu.pbtxt), not names.
MODELS = ("vad", "whisper", "llm", "translate", "completeness", "enhance", "pipeline", "sessions")
# Models only the gpu profile has: the members of its `llm` ensemble. Their folders hold a
# configs/gpu.pbtxt and no config.pbtxt, so explicit model control never loads them elsewhere.
GPU_ONLY_MODELS = ("preprocessing", "tensorrt_llm", "postprocessing", "yes_probability")
# Models only the cpu profile has: Whisper for partials at idle CPU priority. On the gpu
# profile `pipeline` sends partials to `whisper`.
CPU_ONLY_MODELS = ("whisper_partial",)
PROFILE_MODELS = {"cpu": MODELS + CPU_ONLY_MODELS, "gpu": MODELS + GPU_ONLY_MODELS}
# The server counts as up when clients can stream: transcription works even if the LLM
# failed to load (translations then carry an error), so an LLM problem never takes
# transcripts down with it.
ENTRY_MODEL = "pipeline"
# Triton's API groups by who may use them. Health stays open (probes). The client key (when
# the server has one) opens what speakers, viewers and the dashboard need; everything that
# changes or inspects the server itself needs the admin key, and with no admin key given it
# is closed: the launcher then uses a random key of its own and tells nobody.
CLIENT_APIS = "inference,metadata"
ADMIN_APIS = "model-repository,model-config,shared-memory,statistics,trace,logging"
LOOPBACK = "127.0.0.1"
# the launcher's drain requests: sequence ids no client uses (each request starts and ends its own)
DRAIN_SEQUENCE_ID = 2**63 - 1
# Placeholders in tritonserver's arguments that hide_secrets.so fills from the environment.
SECRET_ENV_PREFIX = "LT_SECRET_"
# The launcher waits this long past the grace for the drain's answer (the pipeline's own
# wait for busy streams, dispatch.DRAIN_WAIT_S, plus ending the sequences)
DRAIN_TIMEOUT_S = 15.0
# ... and this long past Triton's exit timeout for Triton to exit before it kills it
EXIT_MARGIN_S = 5.0


def stop_bound_s(drain_grace_s: float, exit_timeout_s: float) -> float:
    """The longest `TritonServer.stop` takes: the grace, the drain, Triton's exit. A
    supervisor's own stop timeout (Kubernetes' terminationGracePeriodSeconds) must exceed it."""
    return drain_grace_s + DRAIN_TIMEOUT_S + exit_timeout_s + EXIT_MARGIN_S


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerError(RuntimeError):
    pass


def default_log_file(grpc_port: int) -> Path:
    """Where `serve`, `run` and `demo` write Triton's own log (one file per gRPC port)."""
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "livetranslate" / f"triton-{grpc_port}.log"


def pytriton_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise ServerError("nvidia-pytriton is not installed: it provides the tritonserver binary")
    return Path(spec.origin).parent


# A Triton installed otherwise (the gpu image's, with the TensorRT-LLM backend) replaces the
# one inside the nvidia-pytriton wheel: its binary and its backends folder, used as they are.
TRITONSERVER_ENV = "LIVETRANSLATE_TRITONSERVER"
BACKEND_DIR_ENV = "LIVETRANSLATE_BACKEND_DIR"


def system_triton() -> tuple[Path, Path] | None:
    binary, backends = os.environ.get(TRITONSERVER_ENV), os.environ.get(BACKEND_DIR_ENV)
    if not binary:
        return None
    if not Path(binary).is_file() or not backends or not Path(backends).is_dir():
        raise ServerError(f"{TRITONSERVER_ENV}={binary} needs an existing binary and "
                          f"{BACKEND_DIR_ENV} set to its backends folder")
    return Path(binary), Path(backends)


def find_tritonserver() -> Path:
    if system_triton():
        return system_triton()[0]
    binary = pytriton_dir() / "tritonserver" / "bin" / "tritonserver"
    if not binary.is_file():
        raise ServerError(f"tritonserver not found at {binary}")
    return binary


def triton_libs() -> Path:
    return pytriton_dir().parent / "nvidia_pytriton.libs"


def _settled(states: dict[str, str]) -> bool:
    """Every model has finished loading, one way or the other."""
    return bool(states) and all(not s.startswith(("LOADING", "UNLOADING")) for s in states.values())


def own_libpython_dir() -> str:
    """The folder of this Python's own shared libpython, when it has one outside the system's
    (pyenv, a custom build). The backend stub links `libpython3.X.so.1.0` and would otherwise
    load the system's: another patch release than the standard library it then uses, whose
    extension modules may not load (Debian's 3.11.2 refuses pyenv 3.11.7's `_ssl`)."""
    import sysconfig

    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or libdir in ("/usr/lib", "/usr/lib64", "/lib"):
        return ""
    return libdir if Path(libdir, sysconfig.get_config_var("INSTSONAME") or "").is_file() else ""


def prepare_backends(cache_dir: Path) -> Path:
    """A backends folder whose python backend has the stub for this Python."""
    source = pytriton_dir() / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"the nvidia-pytriton wheel has no Python backend stub for Python {version}")
    backends = cache_dir / f"backends-py{version}"
    python = backends / "python"
    if not (python / "triton_python_backend_stub").is_file():
        staging = cache_dir / f".backends-py{version}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source / "backends" / "python", staging / "python")
        shutil.copy2(stub, staging / "python" / "triton_python_backend_stub")
        shutil.rmtree(backends, ignore_errors=True)
        staging.rename(backends)
    return backends


@dataclass
class ServerOptions:
    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    profile: str = "cpu"
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    host: str = LOOPBACK  # gRPC, HTTP and metrics bind here; beyond loopback needs a key
    models_dir: Path = field(default_factory=default_models_dir)
    data_dir: Path = field(default_factory=default_data_dir)  # session transcripts
    # a Redis URL shared by several servers (else $LIVETRANSLATE_STORE; empty: the data directory)
    store: str | None = None
    cache_dir: Path = field(default_factory=lambda: Path(sys.prefix) / "share" / "livetranslate")
    log_verbose: int = 0
    # Triton waits this long at most for open sequences and unloading models when it stops;
    # `stop` drains `pipeline` first, so normally nothing is left to wait for
    exit_timeout_s: int = 10
    # on stop, new speakers and viewers are refused at once and the live streams get this
    # long to end on their own before they are ended (and moved on, with a shared store)
    drain_grace_s: float = DEFAULT_DRAIN_GRACE_S
    llm: str | None = None  # a model name from `livetranslate models list` or a GGUF path
    tls_cert: Path | None = None  # gRPC TLS: server certificate and key (PEM)
    tls_key: Path | None = None
    api_key: str | None = None  # the client key: inference and metadata
    # named client keys, each with its own quota (livetranslate.keys); instead of `api_key`
    keys_file: Path | None = None
    admin_key: str | None = None  # model control, shared memory, statistics, trace, logging, configs
    # bind beyond loopback without a client key: anyone who reaches the ports can stream,
    # read every session and use the server's CPU or GPU
    allow_no_key: bool = False
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        import secrets

        # the launcher's own admin access (readiness of every model) when nobody has one
        self._launcher_admin_key = self.admin_key or secrets.token_urlsafe(32)
        self.internal_token = secrets.token_urlsafe(32)

    @property
    def effective_admin_key(self) -> str:
        return self.admin_key or self._launcher_admin_key

    def check_keys(self) -> None:
        """A keys file must be readable, well formed and private; it replaces the single key."""
        if self.keys_file is None:
            return
        from livetranslate.keys import Keys, KeysError

        if self.api_key:
            raise ServerError("give either one client key or a keys file, not both (a keys file may hold one line)")
        try:
            Keys.load(self.keys_file)
        except KeysError as exc:
            raise ServerError(str(exc)) from None

    def check_exposure(self) -> None:
        if is_loopback(self.host) or self.api_key or self.keys_file or self.allow_no_key:
            return
        raise ServerError(
            f"refusing to listen on {self.host} without a key: anyone who reaches it could stream, read "
            f"every session and use this machine's CPU. Set a client key in ${API_KEY_ENV_NAME} "
            f"(clients set it too, or use --api-key-file), or bind to 127.0.0.1, or pass --insecure-no-key "
            f"if the network is yours alone")

    def command(self, backends: Path) -> list[str]:
        if self.profile not in PROFILES:
            raise ServerError(f"unknown profile {self.profile!r}: use one of {', '.join(PROFILES)}")
        self.check_exposure()
        self.check_keys()
        cmd = [
            str(find_tritonserver()),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backends}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            f"--grpc-address={self.host}",
            f"--http-address={self.host}",
            f"--metrics-address={self.host}",
            "--model-control-mode=explicit",
            *[f"--load-model={name}" for name in PROFILE_MODELS[self.profile]],
            "--model-load-thread-count=4",
            "--strict-readiness=false",
            "--exit-on-error=false",
            # clients ping every 30 s to notice a dead network during a quiet meeting; the
            # server pings too (60 s), to free the streams of clients that vanished
            "--grpc-keepalive-permit-without-calls=1",
            "--grpc-http2-min-recv-ping-interval-without-data=10000",
            "--grpc-keepalive-time=60000",
            # Triton keeps the protobufs of up to 8 recent requests for reuse, each as large as
            # the largest it carried: 200 MB requests in a loop grew it by 1.3 GB. Our requests
            # are small (0.1 s of audio), so none is kept (bench/results/oversized.md)
            "--grpc-infer-allocation-pool-size=0",
            f"--log-verbose={self.log_verbose}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
        ]
        if self.profile != "cpu":
            cmd.append(f"--model-config-name={self.profile}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ServerError("TLS needs both a certificate and a key")
        if self.tls_cert:
            cmd += ["--grpc-use-ssl=true", f"--grpc-server-cert={self.tls_cert}", f"--grpc-server-key={self.tls_key}"]
        from livetranslate.protocol import ADMIN_KEY_HEADER, API_KEY_HEADER

        # keys go in as placeholders that hide_secrets.so fills from the environment
        # (with named keys Triton cannot check the client keys: the models do, for inference,
        # and metadata, which no client of ours uses, goes behind the admin key)
        groups = [(ADMIN_APIS + (",metadata" if self.keys_file else ""), ADMIN_KEY_HEADER, "ADMIN")]
        if self.api_key:
            groups.append((CLIENT_APIS, API_KEY_HEADER, "CLIENT"))
        for apis, header, name in groups:
            restricted = f"{apis}:{header}=@{SECRET_ENV_PREFIX}{name}@"
            cmd += [f"--grpc-restricted-protocol={restricted}", f"--http-restricted-api={restricted}"]
        if self.keys_file:
            # Triton checks one key per API group: with named keys it forwards the key's header
            # to `pipeline` and `sessions`, which check it (the internal models check their token)
            from livetranslate.protocol import GRPC_API_KEY_HEADER

            cmd += [f"--grpc-header-forward-pattern=^{GRPC_API_KEY_HEADER}$",
                    f"--http-header-forward-pattern=^{API_KEY_HEADER}$"]
        return cmd + self.extra_args

    def secrets(self) -> dict[str, str]:
        """The environment that fills the command's placeholders (never on the command line)."""
        out = {f"{SECRET_ENV_PREFIX}ADMIN": self.effective_admin_key}
        if self.api_key:
            out[f"{SECRET_ENV_PREFIX}CLIENT"] = self.api_key
        return out

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if system_triton() is None:  # the wheel's binary needs the wheel's libraries
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(triton_libs()), own_libpython_dir(),
                                                                   env.get("LD_LIBRARY_PATH")]))
        env[MODELS_DIR_ENV] = str(self.models_dir)
        env[DATA_DIR_ENV] = str(self.data_dir)
        if self.keys_file:
            from livetranslate.keys import KEYS_FILE_ENV

            env[KEYS_FILE_ENV] = str(Path(self.keys_file).resolve())
        if self.store is not None:
            env[STORE_ENV] = self.store
        # llama.cpp / CTranslate2 threads spin-wait by default and starve each other on a
        # machine with few cores; passive waiting lets them share it.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if self.llm:
            env[LLM_ENV] = self.llm
        env.update(self.env)
        # the models' own copy of nothing secret but the BLS token; keys stay with Triton
        for name in (API_KEY_ENV_NAME, ADMIN_KEY_ENV_NAME):
            env.pop(name, None)
        env[INTERNAL_TOKEN_ENV_NAME] = self.internal_token
        return env


class TritonServer:
    """A running tritonserver process; a context manager that stops it on exit."""

    def __init__(self, options: ServerOptions = ServerOptions(), log_file: Path | None = None):
        self.options = options
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_after_s: float | None = None
        self.draining = False  # stop() has begun: not ready for new clients any more
        self._hurry = threading.Event()  # end the drain's grace now
        self._group: int | None = None  # tritonserver's process group (its stubs are in it)

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

    def start(self) -> "TritonServer":
        import socket

        for port in (self.options.grpc_port, self.options.http_port, self.options.metrics_port):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.connect_host, port))
                except OSError:
                    raise ServerError(f"port {port} is in use: is another server running? "
                                      f"Choose other ports (--grpc-port, --http-port, --metrics-port)") from None
        from livetranslate.launcher.native import NativeBuildError, hide_secrets_library
        from livetranslate.launcher.shm import remove_stale_regions

        remove_stale_regions()

        backends = system_triton()[1] if system_triton() else prepare_backends(self.options.cache_dir)
        cmd = self.options.command(backends)
        env = self.options.environment()
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
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        self._group = self.process.pid  # a session, so a process group, of its own
        return self

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

        request = urllib.request.Request(f"{self.http_url}/v2/repository/index", data=b"{}", method="POST",
                                         headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                index = json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError):
            return {}
        return {m["name"]: m.get("state", "") + (f" ({m['reason']})" if m.get("reason") else "") for m in index}

    def failed_models(self) -> dict[str, str]:
        """The profile's models that are not ready (the index also lists the other profile's folders)."""
        wanted = PROFILE_MODELS.get(self.options.profile, MODELS)
        return {name: state for name, state in self.model_states().items()
                if name in wanted and not state.startswith("READY")}

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of Triton's log file, for a message about why it stopped."""
        try:
            with open(self.log_file, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
                text = log.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def exit_message(self, when: str) -> str:
        """Triton exited on its own: its code, where the log is, and the log's last lines."""
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
            if _settled(states) and self.is_ready() and self._get("/v2/health/live") == 200:
                self.ready_after_s = time.monotonic() - self.started_at
                return self.ready_after_s
            # without the pipeline nothing works: say why now, not at the timeout
            if _settled(states) and states.get(P.PIPELINE, "").startswith("UNAVAILABLE"):
                raise ServerError(f"the {P.PIPELINE} model did not load: {states[P.PIPELINE]}")
            time.sleep(0.25)
        raise ServerError(f"tritonserver not ready after {timeout_s:.0f} s")


    def drain(self, grace_s: float = 0.0, timeout_s: float = DRAIN_TIMEOUT_S,
              say: Callable[[str], None] = lambda _: None) -> bool:
        """Asks `pipeline` to refuse new speakers and viewers at once, to let the live streams
        run for `grace_s` (less when the last one ends, or after hurry()), then to end
        everything it holds (viewers told why, streams moved on, every open sequence ended),
        so that Triton, which waits for open sequences when it stops, finds none. `say` gets
        the pipeline's word that it refuses. True when it drained in time."""
        import queue

        import numpy as np
        import tritonclient.grpc as grpcclient

        from livetranslate.protocol import (AUDIO, DRAIN, DRAIN_GRACE_S, GRPC_API_KEY_HEADER, INTERNAL_PARAMETER,
                                            PIPELINE, Event, EventKind)

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
            inputs = [grpcclient.InferInput(AUDIO, [0], "INT16"), grpcclient.InferInput(DRAIN, [1], "BOOL"),
                      grpcclient.InferInput(DRAIN_GRACE_S, [1], "FP32")]
            inputs[0].set_data_from_numpy(np.zeros(0, np.int16))
            inputs[1].set_data_from_numpy(np.array([True]))
            inputs[2].set_data_from_numpy(np.array([grace], np.float32))
            client.async_stream_infer(PIPELINE, inputs, sequence_id=DRAIN_SEQUENCE_ID - sent, sequence_start=True,
                                      sequence_end=True, parameters={INTERNAL_PARAMETER: self.options.internal_token})
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
        client.stop_stream(cancel_requests=not answered_all)
        client.close()
        return answered_all and not failed

    def _tls_client_options(self) -> dict:
        """How the launcher itself reaches a TLS server: trusting its own certificate, under
        the name the certificate gives."""
        if not self.options.tls_cert:
            return {}
        import ssl

        cert = ssl._ssl._test_decode_cert(str(self.options.tls_cert))  # noqa: SLF001 (stdlib's own PEM reader)
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
        memory and its shared memory, unless it is ended."""
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

    def __enter__(self) -> "TritonServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
