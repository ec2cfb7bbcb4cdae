"""What the Streamlit dashboard shows, without Streamlit: server health, Triton metrics,
a session as rows of transcript / translation / enhanced text."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from livetranslate.protocol import API_KEY_ENV, API_KEY_HEADER, Event, EventKind

URL_ENV, HTTP_ENV, METRICS_ENV = "LIVETRANSLATE_URL", "LIVETRANSLATE_HTTP_URL", "LIVETRANSLATE_METRICS_URL"
TLS_ENV, CA_ENV = "LIVETRANSLATE_TLS", "LIVETRANSLATE_CA"


def _env(name: str, default: str | None = None):
    return field(default_factory=lambda: os.environ.get(name) or default)


@dataclass(frozen=True)
class Endpoints:
    """Where the server is: read from the environment when made (`livetranslate dashboard`
    sets it from its options)."""

    grpc: str = _env(URL_ENV, "localhost:8001")
    http: str = _env(HTTP_ENV, "http://localhost:8000")
    metrics: str = _env(METRICS_ENV, "http://localhost:8002/metrics")
    # a server started with --tls-cert/--api-key: the dashboard is a client like any other
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
    """{"ready": bool, "models": {name: state}, "error": str}"""
    try:
        urllib.request.urlopen(f"{endpoints.http}/v2/health/live", timeout=3)
        index = http_json(f"{endpoints.http}/v2/repository/index", b"{}", api_key=endpoints.api_key)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"ready": False, "models": {}, "error": f"the server at {endpoints.http} is not reachable ({exc})"}
    models = {m["name"]: m.get("state", "?") for m in index}
    return {"ready": models.get("pipeline") == "READY", "models": models, "error": ""}


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


def session_rows(events: list[Event]) -> tuple[list[dict], list[Event]]:
    """Rows of (segment, time, transcript, translation), and the enhanced events."""
    rows: dict[int, dict] = {}
    for e in events:
        if e.kind == EventKind.TRANSCRIPT:
            rows.setdefault(e.segment_id, {"segment": e.segment_id, "time": f"{int(e.start_s // 60):02d}:"
                                           f"{e.start_s % 60:04.1f}", "transcript": "", "translation": ""})
            rows[e.segment_id]["transcript"] = e.text
        elif e.kind == EventKind.TRANSLATION and e.segment_id in rows:
            rows[e.segment_id]["translation"] = e.text or f"(failed: {e.error})"
    enhanced = [e for e in events if e.kind == EventKind.ENHANCED and e.text]
    return [rows[k] for k in sorted(rows)], enhanced
