"""How the Triton server is started: profiles and their models, ports, the bind address and the
loopback rule, keys and TLS, the command line and the environment its models get."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from livetranslate import settings
from livetranslate.launcher.binaries import (
    ServerError,
    find_tritonserver,
    own_libpython_dir,
    system_triton,
    triton_libs,
)
from livetranslate.protocol import API_KEY_ENV as API_KEY_ENV_NAME
from livetranslate.protocol import DEFAULT_DRAIN_GRACE_S
from livetranslate.protocol import INTERNAL_TOKEN_ENV as INTERNAL_TOKEN_ENV_NAME
from livetranslate.store import DATA_DIR_ENV, STORE_ENV, default_data_dir
from livetranslate.weights.catalog import LLM_ENV, MODELS_DIR_ENV, default_models_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]


DEFAULT_MODEL_REPOSITORY = PROJECT_ROOT / "model_repository"


PROFILES = ("cpu", "gpu")


# Models every profile loads; the gpu profile swaps their configs (configs/gpu.pbtxt), not names.
MODELS = ("vad", "whisper", "speakers", "llm", "translate", "completeness", "enhance", "pipeline", "sessions")


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
# wait for busy streams, pipeline.shutdown.DRAIN_WAIT_S, plus ending the sequences)
DRAIN_TIMEOUT_S = 15.0


# ... and this long past Triton's exit timeout for Triton to exit before it kills it
EXIT_MARGIN_S = 5.0


def stop_bound_s(drain_grace_s: float, exit_timeout_s: float) -> float:
    """The longest `TritonServer.stop` takes: the grace, the drain, Triton's exit. A
    supervisor's own stop timeout (Kubernetes' terminationGracePeriodSeconds) must exceed it."""
    return drain_grace_s + DRAIN_TIMEOUT_S + exit_timeout_s + EXIT_MARGIN_S


def is_loopback(host: str | None) -> bool:
    """Whether `host` reaches this machine only: a loopback address or "localhost" ("": every interface)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def default_log_file(grpc_port: int) -> Path:
    """Where `serve`, `run` and `demo` write Triton's own log (one file per gRPC port)."""
    state = settings.state_dir().parent
    return state / "livetranslate" / f"triton-{grpc_port}.log"


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
            f"if the network is yours alone"
        )

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

            cmd += [
                f"--grpc-header-forward-pattern=^{GRPC_API_KEY_HEADER}$",
                f"--http-header-forward-pattern=^{API_KEY_HEADER}$",
            ]
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
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                filter(None, [str(triton_libs()), own_libpython_dir(), env.get("LD_LIBRARY_PATH")])
            )
        # llama.cpp / CTranslate2 threads spin-wait by default and starve each other on a
        # machine with few cores; passive waiting lets them share it.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # numpy's OpenBLAS in the Python models (the speaker encoder's matrix products) would run
        # a thread per core for small products and spin between them, in every stub process
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.update({name: value for name, value in self.env.items() if name not in settings.VARIABLES})
        # the models get their settings from the hand-off file (handoff()), not from this
        # environment; of the secrets only the BLS token: keys stay with Triton
        for name in settings.VARIABLES:
            env.pop(name, None)
        env[INTERNAL_TOKEN_ENV_NAME] = self.internal_token
        return env

    def handoff(self) -> dict[str, str]:
        """The settings of the models inside Triton, as this launcher resolved them: its options,
        then its own settings (environment, config file); handed over in a file of mode 600."""
        from livetranslate.keys import KEYS_FILE_ENV

        values = {
            name: str(settings.get(name))
            for name, variable in settings.VARIABLES.items()
            if "models" in variable.who
            and variable.kind != "secret"
            and name != settings.SETTINGS_FILE
            and settings.is_set(name)
        }
        values[MODELS_DIR_ENV] = str(self.models_dir)
        values[DATA_DIR_ENV] = str(self.data_dir)
        if self.keys_file:
            values[KEYS_FILE_ENV] = str(Path(self.keys_file).resolve())
        if self.store is not None:
            values[STORE_ENV] = self.store
        if self.llm:
            values[LLM_ENV] = self.llm
        values.update({name: value for name, value in self.env.items() if name in settings.VARIABLES})
        return values
