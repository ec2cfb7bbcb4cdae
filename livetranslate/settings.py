"""Every setting of livetranslate, in one place: the only reader of `LIVETRANSLATE_*` variables.

A setting's value comes from the first of these that has it:

1. a command-line option (each command names its own, e.g. `--url`);
2. the hand-off file a parent process wrote for its children (`serve` for the models inside
   Triton, `dashboard` for Streamlit): the values it resolved, so that a child sees what its
   parent was told, whatever the environment says;
3. the environment (`LIVETRANSLATE_URL=...`);
4. the config file (`~/.config/livetranslate/config.toml`, or `$LIVETRANSLATE_CONFIG`): one
   `name = value` line per setting, the variable's name in lower case without the prefix
   (`url = "gpu-box:8001"`, `api_key_file = "~/.config/livetranslate/key"`);
5. the default written here.

Secrets (keys, tokens) come from the environment or from a file of mode 600 that a setting
names (`api_key_file`), never from the command line or the config file.

`livetranslate config` prints the effective settings and where each came from;
docs/configuration.md is generated from VARIABLES (`python -m livetranslate.settings`).
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "LIVETRANSLATE_"
SETTINGS_FILE = "LIVETRANSLATE_SETTINGS_FILE"  # the hand-off file a parent names for its child


@dataclass(frozen=True)
class Variable:
    name: str  # the environment variable
    help: str
    default: Any = None  # a value, or a function of nothing that gives one
    kind: str = "str"  # str, path, int, float, bool, secret
    who: str = "every command"  # which process reads it
    option: str = ""  # the command-line option that sets it too
    python: bool = True  # False: read by scripts/setup.sh or the Dockerfile only

    @property
    def key(self) -> str:
        """Its name in the config file."""
        return self.name[len(PREFIX) :].lower()

    def parse(self, text: str) -> Any:
        if self.kind == "path":
            return Path(text).expanduser()
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        if self.kind == "bool":
            return text.strip().lower() in ("1", "true", "yes", "on")
        return text

    def default_value(self, environ: Mapping[str, str]) -> Any:
        return self.default(environ) if callable(self.default) else self.default


def _xdg(environ: Mapping[str, str], kind: str, fallback: str) -> Path:
    return Path(environ.get(f"XDG_{kind}_HOME") or Path.home() / fallback)


def _data_dir(environ: Mapping[str, str]) -> Path:
    return _xdg(environ, "DATA", ".local/share") / "livetranslate" / "sessions"


def _models_dir(environ: Mapping[str, str]) -> Path:
    """Inside the environment the packages came from, so they live and die together."""
    return Path(sys.prefix) / "share" / "livetranslate" / "models"


def _config_file(environ: Mapping[str, str]) -> Path:
    return _xdg(environ, "CONFIG", ".config") / "livetranslate" / "config.toml"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where livetranslate keeps what it writes for itself: logs, hand-off files."""
    return _xdg(os.environ if environ is None else environ, "STATE", ".local/state") / "livetranslate"


def _dashboard_key_file(environ: Mapping[str, str]) -> Path:
    return _xdg(environ, "CONFIG", ".config") / "livetranslate" / "dashboard.key"


# fmt: off
_ALL = (
    # --- where the server is: every client command, the dashboard ----------------------
    Variable("LIVETRANSLATE_URL", "Triton gRPC address; several, comma-separated (replicas sharing sessions)",
             "localhost:8001", option="--url"),
    Variable("LIVETRANSLATE_TLS", "connect with TLS", False, "bool", option="--tls"),
    Variable("LIVETRANSLATE_CA", "CA certificate (PEM) that signed the server's certificate", None, "path",
             option="--ca"),
    Variable("LIVETRANSLATE_API_KEY", "the client key of a server started with one", None, "secret",
             "every command, serve"),
    Variable("LIVETRANSLATE_API_KEY_FILE", "file (mode 600) holding the client key", None, "path",
             "every command, serve", option="--api-key-file"),
    Variable("LIVETRANSLATE_CONFIG", "the config file", _config_file, "path"),
    # --- the server: serve, run, demo, and the models inside Triton ----------------------
    Variable("LIVETRANSLATE_ADMIN_KEY", "the admin key: model control, shared memory, statistics, trace, logging",
             None, "secret", "serve"),
    Variable("LIVETRANSLATE_KEYS_FILE", "named client keys with their quotas, one per line (mode 600)", None,
             "path", "serve, models", option="--keys-file"),
    Variable("LIVETRANSLATE_STORE", "keep sessions in this Redis (redis://host:6379/0), shared by several servers; "
             "empty: files in the data directory", "", who="serve, prune, models", option="--store"),
    Variable("LIVETRANSLATE_DATA_DIR", "the session files", _data_dir, "path", "serve, prune, models",
             option="--data-dir"),
    Variable("LIVETRANSLATE_MODELS_DIR", "where the model weights are assembled", _models_dir, "path",
             "serve, models fetch, models", option="--models-dir"),
    Variable("LIVETRANSLATE_LLM", "the cpu profile's LLM: a name from `livetranslate models list` or a GGUF path "
             "(default: the `llm` model's configured one)", who="serve, models", option="--llm"),
    Variable("LIVETRANSLATE_LLM_FAMILY", "the prompt family of a GGUF path that is not a known model", None,
             who="models"),
    Variable("LIVETRANSLATE_TRITON_LOG", "where Triton's own log goes ('-': the terminal)", None, who="serve",
             option="--log-file"),
    Variable("LIVETRANSLATE_DRAIN_GRACE_S", "seconds the live streams get to end when the server stops", 3.0,
             "float", "serve", option="--drain-grace-s"),
    Variable("LIVETRANSLATE_HEALTH_PORT", "serve /ready and /live on this port", None, "int", "serve",
             option="--health-port"),
    Variable("LIVETRANSLATE_RETENTION_DAYS", "at start, remove ended sessions older than this", None, "float",
             "serve, models", option="--retention-days"),
    Variable("LIVETRANSLATE_RETENTION_MAX_MB", "at start, remove the oldest ended sessions until the data holds "
             "at most this", None, "float", "serve, models", option="--retention-max-mb"),
    Variable("LIVETRANSLATE_NO_AUDIO_S", "close a speaker stream that has sent no audio for this long (0: never; "
             "default: the `pipeline` model's no_audio_s)", None, "float", "serve, models", option="--no-audio-s"),
    Variable("LIVETRANSLATE_NO_AUDIO_YIELD_S", "a new speaker takes the place of a stream without audio for "
             "longer than this when the server is full (0: never; default: the `pipeline` model's "
             "no_audio_yield_s)", None, "float", "serve, models", option="--no-audio-yield-s"),
    Variable("LIVETRANSLATE_STORE_LEASE_S", "a dead replica's sessions end this long after its last renewal", 10.0,
             "float", "models"),
    Variable("LIVETRANSLATE_STORE_HANDOVER_S", "a drained session waits this long for its client to go on "
             "elsewhere", 30.0, "float", "models"),
    Variable("LIVETRANSLATE_LLAMA_REPACK", "llama.cpp repacks weights for the CPU (0: load them as they are)", True,
             "bool", "models"),
    Variable("LIVETRANSLATE_TRITONSERVER", "a tritonserver binary to use instead of the wheel's", None, "path",
             "serve"),
    Variable("LIVETRANSLATE_BACKEND_DIR", "the backends folder that goes with LIVETRANSLATE_TRITONSERVER", None,
             "path", "serve"),
    Variable("LIVETRANSLATE_INTERNAL_TOKEN", "the token of the server's own BLS calls (set by serve)", None,
             "secret", "models"),
    Variable("LIVETRANSLATE_SETTINGS_FILE", "the hand-off file a parent process wrote (set by serve and dashboard)",
             None, "path", "models, dashboard"),
    # --- the dashboard and the captions page ---------------------------------------------
    Variable("LIVETRANSLATE_HTTP_URL", "Triton's HTTP address (default: the gRPC host, port 8000)", None,
             who="dashboard", option="--http-url"),
    Variable("LIVETRANSLATE_METRICS_URL", "Triton's metrics address (default: the gRPC host, port 8002)", None,
             who="dashboard", option="--metrics-url"),
    Variable("LIVETRANSLATE_DASHBOARD_CREDENTIALS", "YAML file of users and bcrypt-hashed passwords", None, "path",
             "dashboard", option="--credentials"),
    Variable("LIVETRANSLATE_DASHBOARD_NO_LOGIN", "no login (loopback only)", False, "bool", "dashboard",
             option="--no-login"),
    Variable("LIVETRANSLATE_DASHBOARD_MAX_UPLOAD_MB", "largest audio file the dashboard accepts", 200, "int",
             "dashboard", option="--max-upload-mb"),
    Variable("LIVETRANSLATE_DASHBOARD_COOKIE_KEY", "signs the login cookie and the share links' tokens", None,
             "secret", "dashboard, share"),
    Variable("LIVETRANSLATE_DASHBOARD_KEY_FILE", "where the dashboard keeps that secret", _dashboard_key_file,
             "path", "dashboard, share"),
    Variable("LIVETRANSLATE_DASHBOARD_URL", "the dashboard's address as coworkers reach it (share links)",
             "http://127.0.0.1:8501", who="share", option="--dashboard"),
    Variable("LIVETRANSLATE_CAPTIONS_REFRESH_S", "how often the captions page looks for new lines", 0.5, "float",
             "dashboard"),
    # --- the OpenAI-compatible gateway --------------------------------------------------
    Variable("LIVETRANSLATE_GATEWAY_MAX_UPLOAD_MB", "largest audio file the gateway accepts (MB of 2^20 bytes)", 200,
             "int", "gateway", option="--max-upload-mb"),
    Variable("LIVETRANSLATE_GATEWAY_URL", "the gateway's address as speakers reach it (`share --speaker` links)",
             "http://127.0.0.1:8080", who="share"),
    # --- set-up and the container: read by scripts, listed here to be documented once ----
    Variable("LIVETRANSLATE_APT_PACKAGES", "extra Debian packages scripts/setup.sh installs", None,
             who="scripts/setup.sh", python=False),
    Variable("LIVETRANSLATE_EXTRAS", "the project's extras scripts/setup.sh installs (e.g. test)", None,
             who="scripts/setup.sh, Dockerfile", python=False),
    Variable("LIVETRANSLATE_BUILD_DIR", "where the gpu profile's engine build works", None,
             who="engine build job", python=False),
    Variable("LIVETRANSLATE_ENGINES_DIR", "the gpu profile's TensorRT-LLM engines", None,
             who="Dockerfile, gpu overlay", python=False),
)
# fmt: on
VARIABLES: dict[str, Variable] = {v.name: v for v in _ALL}
BY_KEY: dict[str, Variable] = {v.key: v for v in _ALL}


class SettingsError(ValueError):
    """A setting that cannot be used: a broken config file, a value of the wrong kind."""


_handoff: dict[str, str] | None = None  # the parent's values, once read
_handoff_cache: dict[str, dict[str, str]] = {}
_config_cache: dict[Path, tuple[float, dict[str, str]]] = {}


def use_handoff(path: Path | str) -> None:
    """This process takes its settings from the hand-off file at `path` (its parent's)."""
    global _handoff
    _handoff = _read_handoff(Path(path))


def _read_handoff(path: Path) -> dict[str, str]:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read the settings file {path}: {exc}") from None
    return {str(k): str(v) for k, v in values.items() if k in VARIABLES}


def write_handoff(values: Mapping[str, Any], path: Path) -> Path:
    """Writes `values` (variable name -> value) for a child process, readable by this user only."""
    unknown = sorted(set(values) - set(VARIABLES))
    if unknown:
        raise SettingsError(f"no such settings: {', '.join(unknown)}")
    text = json.dumps({k: str(v) for k, v in values.items() if v is not None}, indent=1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


def _handoff_values(environ: Mapping[str, str]) -> dict[str, str]:
    if _handoff is not None:
        return _handoff
    path = environ.get("LIVETRANSLATE_SETTINGS_FILE")
    if not path:
        return {}
    if path not in _handoff_cache:  # written once, before this process started
        _handoff_cache[path] = _read_handoff(Path(path))
    return _handoff_cache[path]


def _config_values(environ: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
    path = Path(environ.get("LIVETRANSLATE_CONFIG") or _config_file(environ)).expanduser()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return path, {}
    cached = _config_cache.get(path)
    if cached and cached[0] == mtime:
        return path, cached[1]
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: not a config file ({exc})") from None
    values: dict[str, str] = {}
    for key, value in raw.items():
        variable = BY_KEY.get(key)
        if variable is None or not variable.python:
            raise SettingsError(f"{path}: unknown setting {key!r} (`livetranslate config` lists them)")
        if variable.kind == "secret":
            raise SettingsError(
                f"{path}: {key} is a secret: put it in a file of mode 600 and name that file, or in ${variable.name}"
            )
        values[variable.name] = "1" if value is True else "0" if value is False else str(value)
    _config_cache[path] = (mtime, values)
    return path, values


def lookup(name: str, environ: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """The setting's value and where it came from: 'settings file', 'environment', the config
    file's path, or 'default'."""
    variable = VARIABLES[name]
    environ = os.environ if environ is None else environ
    handed = _handoff_values(environ)
    if name in handed:  # what the parent resolved, empty ("nothing") included
        return (_parsed(variable, handed[name], "settings file") if handed[name] else None), "settings file"
    if environ.get(name):
        return _parsed(variable, environ[name], "environment"), "environment"
    path, values = _config_values(environ)
    if values.get(name):
        return _parsed(variable, values[name], str(path)), str(path)
    return variable.default_value(environ), "default"


def _parsed(variable: Variable, text: str, source: str) -> Any:
    try:
        return variable.parse(text)
    except ValueError:
        raise SettingsError(f"{variable.name}={text!r} (from the {source}) is not a valid {variable.kind}") from None


def get(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The setting's value (typed; its default when nothing sets it)."""
    return lookup(name, environ)[0]


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    return lookup(name, environ)[1] != "default"


def read_secret_file(path: Path | str) -> str:
    """A key from a file (keep it mode 600: `ps` never shows it, other users cannot read it)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise SettingsError(f"{path} is empty")
    return text


def client_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The client key: $LIVETRANSLATE_API_KEY, else the file LIVETRANSLATE_API_KEY_FILE names."""
    key = get("LIVETRANSLATE_API_KEY", environ)
    if key:
        return key
    path = get("LIVETRANSLATE_API_KEY_FILE", environ)
    return read_secret_file(path) if path else None


def shown(name: str, value: Any) -> str:
    """A value as `livetranslate config` prints it: secrets and passwords hidden."""
    if value is None or value == "":
        return "-"
    if VARIABLES[name].kind == "secret":
        return "(set, hidden)"
    text = str(value)
    if "://" in text and "@" in text:  # a password in a URL
        scheme, _, rest = text.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return text


def markdown() -> str:
    """docs/configuration.md, made from VARIABLES."""
    lines = [
        "# Configuration",
        "",
        "Generated from `livetranslate/settings.py` by `python -m livetranslate.settings`; do not edit.",
        "",
        *__doc__.strip().split("\n")[2:],
        "",
        "| variable | config file | option | read by | default | what it sets |",
        "|---|---|---|---|---|---|",
    ]
    for v in _ALL:
        default = v.default
        if callable(v.default):
            default = {
                "_data_dir": "~/.local/share/livetranslate/sessions",
                "_models_dir": ".venv/share/livetranslate/models",
                "_config_file": "~/.config/livetranslate/config.toml",
                "_dashboard_key_file": "~/.config/livetranslate/dashboard.key",
            }[v.default.__name__]
        key = v.key if v.python and v.kind != "secret" else "-"
        lines.append(
            f"| `{v.name}` | {key} | {v.option or '-'} | {v.who} | {'-' if default in (None, '') else default}"
            f" | {v.help} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
