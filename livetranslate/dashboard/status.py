"""What the dashboard shows of the server: health, Triton's metrics as a table of stages, a
session as rows of transcript, translation and enhanced text."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from livetranslate import protocol as P
from livetranslate import settings
from livetranslate.present import readable
from livetranslate.present.speakers import SpeakerBook
from livetranslate.protocol import (
    API_KEY_HEADER,
    PIPELINE,
    Event,
    EventKind,
)

URL_ENV, HTTP_ENV, METRICS_ENV = "LIVETRANSLATE_URL", "LIVETRANSLATE_HTTP_URL", "LIVETRANSLATE_METRICS_URL"


TLS_ENV, CA_ENV = "LIVETRANSLATE_TLS", "LIVETRANSLATE_CA"


MODELS = (P.PIPELINE, P.VAD, P.WHISPER, P.WHISPER_PARTIAL, P.LLM, P.TRANSLATE, P.COMPLETENESS, P.ENHANCE, P.SESSIONS)


def _setting(name: str):
    return field(default_factory=lambda: settings.get(name))


def beside(grpc_url: str, port: int, path: str = "") -> str:
    """Triton's HTTP or metrics address on the host of (the first of) its gRPC addresses."""
    first = grpc_url.split(",")[0].strip()
    first = first.split("://", 1)[1] if "://" in first else first
    if first.startswith("["):  # [::1]:8001
        host = first[: first.index("]") + 1]
    else:
        host = first.rsplit(":", 1)[0] if ":" in first else first
    return f"http://{host or 'localhost'}:{port}{path}"


@dataclass(frozen=True)
class Endpoints:
    """Where the server is, from the settings when made (`livetranslate dashboard` hands its
    options over): one gRPC address is enough, HTTP and metrics default to its host."""

    grpc: str = _setting(URL_ENV)
    http: str = ""  # default: the gRPC host, port 8000
    metrics: str = ""  # default: the gRPC host, port 8002
    # a server started with --tls-cert and a client key: the dashboard is a client like any other
    tls: bool = _setting(TLS_ENV)
    ca: str | None = field(default_factory=lambda: str(settings.get(CA_ENV) or "") or None)
    api_key: str | None = field(default_factory=settings.client_key)

    def __post_init__(self):
        if not self.http:
            object.__setattr__(self, "http", settings.get(HTTP_ENV) or beside(self.grpc, 8000))
        if not self.metrics:
            object.__setattr__(self, "metrics", settings.get(METRICS_ENV) or beside(self.grpc, 8002, "/metrics"))

    def connection(self):
        from livetranslate.client import Connection

        return Connection(self.grpc, tls=self.tls, ca=self.ca, api_key=self.api_key)


def http_json(url: str, data: bytes | None = None, timeout: float = 3.0, api_key: str | None = None):
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={API_KEY_HEADER: api_key} if api_key else {},
    )
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
        models = {
            name: "READY" if _answers(f"{endpoints.http}/v2/models/{name}/ready", endpoints.api_key) else "not ready"
            for name in MODELS
        }
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


_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$")


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
        rows.append(
            {
                "stage": model,
                "requests": int(n),
                "failures": int(m.get("nv_inference_request_failure", 0.0)),
                "mean request ms": round(m.get("nv_inference_request_duration_us", 0.0) / n / 1000, 1) if n else 0.0,
                "mean compute ms": round(m.get("nv_inference_compute_infer_duration_us", 0.0) / execs / 1000, 1)
                if execs
                else 0.0,
            }
        )
    return rows


def rates(
    history: list[tuple[float, dict[str, dict[str, float]]]], metric: str = "nv_inference_request_success"
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
    """Rows of (segment, time, speaker where labelled, transcript, translation), and a column of the translations
    made in context (readable.COMBINED_NAME) when one of them adds something: each on the
    row of the last sentence it covers. The translations are those into `language` (default:
    the first translated, the speaker's target; a session also stores the languages its
    viewers asked for)."""
    language = language or next((e.language for e in events if e.kind == EventKind.TRANSLATION), "")
    speakers = SpeakerBook.of(events)  # names given, lines moved to another speaker
    rows: dict[int, dict] = {}
    translations: dict[int, Event] = {}
    combined: dict[int, str] = {}
    for e in events:
        if e.kind == EventKind.TRANSCRIPT:
            rows.setdefault(
                e.segment_id,
                {
                    "segment": e.segment_id,
                    "time": f"{int(e.start_s // 60):02d}:{e.start_s % 60:04.1f}",
                    "speaker": speakers.who(e.segment_id, e.speaker),
                    "transcript": "",
                    "translation": "",
                },
            )
            rows[e.segment_id]["transcript"] = e.text
        elif e.kind == EventKind.TRANSLATION and e.segment_id in rows and e.language == language:
            translations[e.segment_id] = e
            small = " (small model)" if e.note and e.text else ""  # the server was behind
            rows[e.segment_id]["translation"] = (e.text + small) if e.text else f"(failed: {e.error})"
        elif (
            e.kind == EventKind.PARTIAL_TRANSLATION
            and e.segment_id in rows
            and e.language == language
            and e.segment_id not in translations
        ):  # the translation so far, while it is generated
            rows[e.segment_id]["translation"] = f"{e.text} …"
        elif e.kind == EventKind.ENHANCED and e.language == language and readable.adds_something(e, translations):
            ids = readable.covered_ids(e)
            combined[e.segment_id] = e.text if len(ids) == 1 else f"(#{ids.start}–{ids.stop - 1}) {e.text}"
    out = [rows[k] for k in sorted(rows)]
    if not any(row["speaker"] for row in out):  # a session without speaker labels has no such column
        for row in out:
            del row["speaker"]
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
            out[label] = {
                "median s": round(percentile(values, 0.5), 1),
                "p95 s": round(percentile(values, 0.95), 1),
                "sentences": len(values),
            }
    return out


def model_problems(models: dict[str, str]) -> list[str]:
    """The models of this server that are not ready. A model the index lists without a state
    is not loaded in this profile (e.g. a gpu model on the cpu profile): no problem."""
    return sorted(f"{name}: {state.lower()}" for name, state in models.items() if state not in ("READY", "?", ""))


# --- the session list, and the dashboard's address of the session chosen there -------------
LIVE_MARK = "  ● LIVE"


def session_label(info: dict) -> str:
    """How the session list shows a session: its name and its state. Shown only: the address
    names the session by its name alone (`address_params`)."""
    return f"{info['name']}{LIVE_MARK}" if info["state"] == "live" else f"{info['name']} ({info['state']})"


_OLD_LABEL = re.compile(rf"(.+?)(?:{re.escape(LIVE_MARK)}| \([a-z]+\))")


def session_from_address(value: str | None, names) -> str | None:
    """The session that the address's `session=` names, when it is one of `names`. An address
    of an older dashboard, which carried the list's label (`standup  ● LIVE`), still finds its
    session."""
    if not value:
        return None
    if value in names:
        return value
    old = _OLD_LABEL.fullmatch(value)
    return old.group(1) if old and old.group(1) in names else None


def address_params(params: dict[str, str], session: str | None) -> dict[str, str]:
    """The query of the dashboard's address with `session` chosen: its name only (a bookmark
    or a link keeps working when the session ends), the other parameters as they were."""
    query = {key: value for key, value in params.items() if key != "session"}
    if session:
        query["session"] = session
    return query
