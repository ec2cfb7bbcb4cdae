"""What the Streamlit dashboard shows and who may see it, without Streamlit: server health,
Triton metrics, a session as rows of transcript / translation / enhanced text, the login
configuration, and uploads streamed to the server a block at a time."""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from livetranslate import protocol as P
from livetranslate.present import readable
from livetranslate.protocol import API_KEY_ENV, API_KEY_HEADER, PIPELINE, SAMPLE_RATE_HZ, Event, EventKind
from livetranslate.share import COOKIE_KEY_ENV  # signs the login cookie; the share links' secret too

URL_ENV, HTTP_ENV, METRICS_ENV = "LIVETRANSLATE_URL", "LIVETRANSLATE_HTTP_URL", "LIVETRANSLATE_METRICS_URL"
TLS_ENV, CA_ENV = "LIVETRANSLATE_TLS", "LIVETRANSLATE_CA"
# who may see the dashboard: `livetranslate dashboard` sets these from its options
CREDENTIALS_ENV = "LIVETRANSLATE_DASHBOARD_CREDENTIALS"  # YAML: usernames with bcrypt-hashed passwords
NO_LOGIN_ENV = "LIVETRANSLATE_DASHBOARD_NO_LOGIN"  # "1": open to whoever reaches it (loopback only)
MAX_UPLOAD_ENV = "LIVETRANSLATE_DASHBOARD_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 200
COOKIE_NAME, COOKIE_EXPIRY_DAYS = "livetranslate_dashboard", 1.0
MODELS = (P.PIPELINE, P.VAD, P.WHISPER, P.WHISPER_PARTIAL, P.LLM, P.TRANSLATE, P.COMPLETENESS, P.ENHANCE, P.SESSIONS)


def _env(name: str, default: str | None = None):
    return field(default_factory=lambda: os.environ.get(name) or default)


@dataclass(frozen=True)
class Endpoints:
    """Where the server is: read from the environment when made (`livetranslate dashboard`
    sets it from its options)."""

    grpc: str = _env(URL_ENV, "localhost:8001")
    http: str = _env(HTTP_ENV, "http://localhost:8000")
    metrics: str = _env(METRICS_ENV, "http://localhost:8002/metrics")
    # a server started with --tls-cert and a client key: the dashboard is a client like any other
    tls: bool = field(default_factory=lambda: os.environ.get(TLS_ENV, "") == "1")
    ca: str | None = _env(CA_ENV)
    api_key: str | None = _env(API_KEY_ENV)

    def connection(self):
        from livetranslate.client import Connection

        return Connection(self.grpc, tls=self.tls, ca=self.ca, api_key=self.api_key)


def http_json(url: str, data: bytes | None = None, timeout: float = 3.0, api_key: str | None = None):
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={API_KEY_HEADER: api_key} if api_key else {})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        body = r.read()
    return json.loads(body) if body else {}


def health(endpoints: Endpoints) -> dict:
    """{"ready": bool, "models": {name: state}, "error": str}. The repository index lists every
    model with its state; a server that keeps it for the admin key (the dashboard holds only
    the client key) is asked model by model instead, through the open health API."""
    try:
        urllib.request.urlopen(f"{endpoints.http}/v2/health/live", timeout=3)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"ready": False, "models": {}, "error": f"the server at {endpoints.http} is not reachable ({exc})"}
    try:
        index = http_json(f"{endpoints.http}/v2/repository/index", b"{}", api_key=endpoints.api_key)
        models = {m["name"]: m.get("state", "?") for m in index}
    except urllib.error.HTTPError:
        models = {name: "READY" if _answers(f"{endpoints.http}/v2/models/{name}/ready", endpoints.api_key)
                  else "not ready" for name in MODELS}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"ready": False, "models": {}, "error": f"the server at {endpoints.http} is not reachable ({exc})"}
    return {"ready": models.get(PIPELINE) == "READY", "models": models, "error": ""}


def _answers(url: str, api_key: str | None) -> bool:
    request = urllib.request.Request(url, headers={API_KEY_HEADER: api_key} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=3):
            return True
    except (urllib.error.URLError, OSError):
        return False


_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$')


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text -> {model: {metric: value}} for Triton's per-model counters."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m:
            continue
        name, labels, value = m.groups()
        model = re.search(r'model="([^"]+)"', labels)
        if model:
            out.setdefault(model.group(1), {})[name] = out.get(model.group(1), {}).get(name, 0.0) + float(value)
    return out


def stage_table(metrics: dict[str, dict[str, float]]) -> list[dict]:
    """Per model: requests, mean request / compute latency in ms."""
    rows = []
    for model, m in sorted(metrics.items()):
        n = m.get("nv_inference_request_success", 0.0)
        execs = m.get("nv_inference_exec_count", 0.0) or n
        rows.append({
            "stage": model,
            "requests": int(n),
            "failures": int(m.get("nv_inference_request_failure", 0.0)),
            "mean request ms": round(m.get("nv_inference_request_duration_us", 0.0) / n / 1000, 1) if n else 0.0,
            "mean compute ms": round(m.get("nv_inference_compute_infer_duration_us", 0.0) / execs / 1000, 1)
            if execs else 0.0,
        })
    return rows


def rates(history: list[tuple[float, dict[str, dict[str, float]]]], metric: str = "nv_inference_request_success"
          ) -> list[dict]:
    """Per-second rates of a Triton counter between successive samples of the metrics
    endpoint, one row per interval: {"t": seconds since the first sample, model: rate}."""
    rows = []
    for (t0, a), (t1, b) in zip(history, history[1:]):
        if t1 <= t0:
            continue
        row = {"t": round(t1 - history[0][0], 1)}
        for model in sorted(b):
            delta = b[model].get(metric, 0.0) - a.get(model, {}).get(metric, 0.0)
            row[model] = round(max(delta, 0.0) / (t1 - t0), 2)  # a restarted server resets counters
        rows.append(row)
    return rows


def fetch_metrics(endpoints: Endpoints) -> dict[str, dict[str, float]]:
    try:
        with urllib.request.urlopen(endpoints.metrics, timeout=3) as r:
            return parse_metrics(r.read().decode())
    except (urllib.error.URLError, OSError):
        return {}


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=])")


def escape_markdown(text: str) -> str:
    """Text for a Streamlit element that renders Markdown (messages, captions, progress
    labels): every character Markdown or Streamlit's directives (:color[..], :icon:) could
    read is backslash-escaped, so it shows as typed. Long text goes to st.text instead."""
    return _MARKDOWN.sub(r"\\\1", text)


def session_rows(events: list[Event], language: str = "") -> list[dict]:
    """Rows of (segment, time, transcript, translation), and a column of the translations
    made in context (readable.COMBINED_NAME) when one of them adds something: each on the
    row of the last sentence it covers. The translations are those into `language` (default:
    the first translated, the speaker's target; a session also stores the languages its
    viewers asked for)."""
    language = language or next((e.language for e in events if e.kind == EventKind.TRANSLATION), "")
    rows: dict[int, dict] = {}
    translations: dict[int, Event] = {}
    combined: dict[int, str] = {}
    for e in events:
        if e.kind == EventKind.TRANSCRIPT:
            rows.setdefault(e.segment_id, {"segment": e.segment_id, "time": f"{int(e.start_s // 60):02d}:"
                                           f"{e.start_s % 60:04.1f}", "transcript": "", "translation": ""})
            rows[e.segment_id]["transcript"] = e.text
        elif e.kind == EventKind.TRANSLATION and e.segment_id in rows and e.language == language:
            translations[e.segment_id] = e
            small = " (small model)" if e.note and e.text else ""  # the server was behind
            rows[e.segment_id]["translation"] = (e.text + small) if e.text else f"(failed: {e.error})"
        elif (e.kind == EventKind.PARTIAL_TRANSLATION and e.segment_id in rows and e.language == language
              and e.segment_id not in translations):  # the translation so far, while it is generated
            rows[e.segment_id]["translation"] = f"{e.text} …"
        elif e.kind == EventKind.ENHANCED and e.language == language and readable.adds_something(e, translations):
            ids = readable.covered_ids(e)
            combined[e.segment_id] = e.text if len(ids) == 1 else f"(#{ids.start}–{ids.stop - 1}) {e.text}"
    out = [rows[k] for k in sorted(rows)]
    if combined:
        for row in out:
            row[readable.COMBINED_NAME] = combined.get(row["segment"], "")
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def delays(events: list[Event]) -> dict[str, dict]:
    """What a reader waits, from the end of a sentence being spoken: until its caption
    (transcript) and until its translation, in seconds (median, 95th percentile, count)."""
    out = {}
    for label, kind in (("speech to caption", EventKind.TRANSCRIPT), ("speech to translation", EventKind.TRANSLATION)):
        values = [e.latency_ms / 1000 for e in events if e.kind == kind and not e.error and e.latency_ms > 0]
        if values:
            out[label] = {"median s": round(percentile(values, 0.5), 1), "p95 s": round(percentile(values, 0.95), 1),
                          "sentences": len(values)}
    return out


def model_problems(models: dict[str, str]) -> list[str]:
    """The models of this server that are not ready. A model the index lists without a state
    is not loaded in this profile (e.g. a gpu model on the cpu profile): no problem."""
    return sorted(f"{name}: {state.lower()}" for name, state in models.items() if state not in ("READY", "?", ""))


# --- who may see it ------------------------------------------------------------------------
class AccessError(RuntimeError):
    """The dashboard would be open to anyone who reaches it: refuse to show anything."""


NO_CREDENTIALS = (
    "The dashboard needs a login. Create a credentials file with\n"
    "  livetranslate dashboard --add-user NAME --credentials FILE\n"
    f"and start it with --credentials FILE (or ${CREDENTIALS_ENV}=FILE). "
    "For a dashboard that only this machine can reach: --no-login (binds to 127.0.0.1).")


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False  # a name other than localhost, or "" (every interface)


def access_mode(bind_address: str | None, environ=os.environ) -> str:
    """"login" when a credentials file is configured, "open" for --no-login on a loopback
    address; anything else raises AccessError (the app then shows nothing)."""
    if environ.get(CREDENTIALS_ENV):
        return "login"
    if environ.get(NO_LOGIN_ENV) == "1":
        if is_loopback(bind_address):
            return "open"
        raise AccessError(f"--no-login is only allowed when the dashboard listens on a loopback address, "
                          f"not {bind_address or 'every interface'!r}.")
    raise AccessError(NO_CREDENTIALS)


class CredentialsError(ValueError):
    pass


def _is_bcrypt(text) -> bool:
    return isinstance(text, str) and re.fullmatch(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", text) is not None


def load_credentials(path: str | Path) -> dict:
    """The `credentials` of a streamlit-authenticator config file: {"usernames": {name:
    {"name": ..., "password": bcrypt hash}}}. Plain-text passwords are refused, not hashed."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CredentialsError(f"cannot read the credentials file {path}: {exc}") from None
    users = (config.get("credentials") or {}).get("usernames") if isinstance(config, dict) else None
    if not isinstance(users, dict) or not users:
        raise CredentialsError(f"{path}: no users (expected credentials: usernames: NAME: password: HASH)")
    for name, user in users.items():
        if not isinstance(user, dict) or not _is_bcrypt(user.get("password")):
            raise CredentialsError(f"{path}: the password of {name!r} is not a bcrypt hash; "
                                   f"set it with `livetranslate dashboard --add-user {name} --credentials {path}`")
    return {"usernames": {str(name).lower(): dict(user) for name, user in users.items()}}


def add_user(path: str | Path, username: str, password: str) -> None:
    """Adds USERNAME (or replaces its password) in a credentials file, written owner-only."""
    import bcrypt
    import yaml

    username, password = username.strip().lower(), password.strip()  # the login form does the same
    if not username:
        raise CredentialsError("the user name is empty")
    if not password:
        raise CredentialsError("the password is empty")
    if len(password.encode()) > 72:
        raise CredentialsError("the password is longer than 72 bytes (bcrypt's limit)")
    path = Path(path)
    config = {}
    if path.exists():
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(config, dict):
            raise CredentialsError(f"{path} is not a credentials file")
    users = config.setdefault("credentials", {}).setdefault("usernames", {}) or {}
    config["credentials"]["usernames"] = users
    users.setdefault(username, {"name": username})
    users[username]["password"] = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)


# Without a configured key, a random one for this process: logins end with a restart.
_PROCESS_COOKIE_KEY = secrets.token_urlsafe(32)


def cookie_key(environ=os.environ) -> str:
    return environ.get(COOKIE_KEY_ENV) or _PROCESS_COOKIE_KEY


def max_upload_mb(environ=os.environ) -> int:
    try:
        return max(1, int(environ.get(MAX_UPLOAD_ENV) or DEFAULT_MAX_UPLOAD_MB))
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB


# --- uploads -----------------------------------------------------------------------------
class UploadError(ValueError):
    """An upload that cannot be streamed: too large, or not audio."""


_open_uploads: set[Path] = set()  # folders of uploads still streaming, removed at exit at the latest


@atexit.register
def _remove_open_uploads() -> None:
    for folder in list(_open_uploads):
        shutil.rmtree(folder, ignore_errors=True)


UPLOAD_FORMATS = "Upload a recording such as wav, mp3, m4a, ogg, flac or webm."


def _has_sound(path: Path) -> bool:
    """Whether the file's first audio track decodes to at least 10 ms of audio (a header
    alone, or a track ffmpeg cannot decode, would make a session with nothing in it)."""
    import av

    heard = 0.0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                heard += frame.samples / (frame.sample_rate or SAMPLE_RATE_HZ)
                if heard >= 0.01:
                    return True
    except Exception:
        pass
    return False


class UploadedAudio:
    """An uploaded file on its way to the server. It lies in a private temporary folder only
    while it streams; it is decoded a packet at a time (never whole in memory), resampled to
    16 kHz mono int16, and paced in real time like a live source. `close()` (or leaving the
    `with` block) removes the folder; it is safe from any thread and more than once."""

    rate, live, overflows = SAMPLE_RATE_HZ, False, 0

    def __init__(self, upload: BinaryIO, suffix: str = "", *, max_bytes: int, chunk_ms: int = 100,
                 realtime: bool = True, tmp_dir: str | Path | None = None):
        import av

        self.chunk, self.realtime = self.rate * chunk_ms // 1000, realtime
        self._lock = threading.Lock()  # one decode step at a time; close() waits for it
        self._container = None
        self.folder = Path(tempfile.mkdtemp(prefix="livetranslate-upload-", dir=tmp_dir))
        _open_uploads.add(self.folder)
        try:
            path = self.folder / ("upload" + (suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""))
            try:
                with open(path, "wb") as out:
                    copied = 0
                    while block := upload.read(1 << 20):
                        copied += len(block)
                        if copied > max_bytes:
                            raise UploadError(f"the file is larger than the limit of {max_bytes / 2**20:.0f} MB")
                        out.write(block)
            except OSError as exc:  # the temporary folder is full, or gone
                raise UploadError(f"cannot keep the upload while it streams: {exc.strerror or exc}") from None
            # messages name the file's kind, never its temporary path (PyAV's errors carry it)
            try:
                self._container = av.open(str(path))
            except Exception:
                raise UploadError(f"not an audio file: ffmpeg cannot read it. {UPLOAD_FORMATS}") from None
            if not self._container.streams.audio:
                raise UploadError(f"the file has no sound (no audio track). {UPLOAD_FORMATS}")
            if not _has_sound(path):
                raise UploadError(f"the file's audio track holds no sound ffmpeg can decode. {UPLOAD_FORMATS}")
            duration = self._container.duration  # in av.time_base units, when the file says
            self.seconds = duration / av.time_base if duration else None
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
        shutil.rmtree(self.folder, ignore_errors=True)
        _open_uploads.discard(self.folder)

    def __iter__(self) -> Iterator[np.ndarray]:
        started, sent = time.monotonic(), 0.0
        for part in self._decoded():
            ahead = started + sent - time.monotonic()
            if self.realtime and ahead > 0:
                time.sleep(ahead)
            yield part
            sent += len(part) / self.rate

    def _decoded(self) -> Iterator[np.ndarray]:
        import av

        with self._lock:
            if self._container is None:
                return
            stream = self._container.streams.audio[0]
            packets = self._container.demux(stream)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
        pending: list[np.ndarray] = []
        have = 0
        while True:
            with self._lock:
                if self._container is None:
                    return  # closed while streaming: stop quietly
                try:
                    packet = next(packets, None)
                except Exception:  # damaged past this point: end with what was read
                    packet = None
                frames = []
                try:
                    for frame in packet.decode() if packet is not None else ():
                        frames.extend(resampler.resample(frame))
                except av.FFmpegError:
                    pass  # a damaged packet: skip it, keep the rest of the file
                if packet is None:
                    frames.extend(resampler.resample(None))  # what the resampler still holds
            for frame in frames:
                pcm = frame.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                pending.append(pcm)
                have += len(pcm)
            while have >= self.chunk or (packet is None and have):
                joined = np.concatenate(pending)
                part, rest = joined[: self.chunk], joined[self.chunk:]
                pending, have = ([rest] if len(rest) else []), len(rest)
                yield part
            if packet is None:
                return
