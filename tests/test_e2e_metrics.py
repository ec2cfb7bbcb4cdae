"""End to end: a German sample streamed to a real Triton server moves the pipeline's own
metrics on Triton's metrics endpoint (livetranslate.pipeline.metrics)."""

import re
import threading
import time
import urllib.request
import uuid

import pytest

from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.pipeline import metrics as M
from livetranslate.protocol import EventKind, SessionOptions

pytestmark = pytest.mark.slow

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text -> {(name, labels): value} (prometheus_client is not installed here)."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line.strip())
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_stream_moves_the_pipelines_metrics_and_its_gauges_come_back_to_zero(server, audio_files):
    url = f"http://{server.connect_host}:{server.options.metrics_port}/metrics"
    before = scrape(url)
    names = {name for name, _ in before}
    assert M.series_names() <= names, M.series_names() - names  # every series is there from the start
    assert value(before, "livetranslate_active_streams") == 0

    seen = []  # active streams, as a scraper sees them while the stream runs
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(value(scrape(url), "livetranslate_active_streams"))
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pcm, rate = read_audio(audio_files["speech_b"])
    try:
        with PipelineClient(server.grpc_url) as client:
            options = SessionOptions(f"metrics-{uuid.uuid4().hex[:8]}", rate, "de", partials=True)
            events = list(client.stream(chunks(pcm, rate // 10), options, realtime=False))
    finally:
        done.set()
        watcher.join(10)
    assert events[-1].kind == EventKind.END and not events[-1].error
    assert max(seen) == 1, seen

    deadline = time.monotonic() + 10  # the gauges are read once a second
    after = scrape(url)
    while value(after, "livetranslate_active_streams") != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        after = scrape(url)
    assert value(after, "livetranslate_active_streams") == 0
    assert value(after, "livetranslate_translation_backlog") == 0
    assert value(after, "livetranslate_queued_audio_max_seconds") == 0

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    transcripts = [e for e in events if e.kind == EventKind.TRANSCRIPT]
    assert len(transcripts) >= 2
    latency = M.EVENT_LATENCY.name
    for kind in M.LATENCY_KINDS:
        measured = [e for e in events if e.kind == kind and not e.error]
        assert moved(latency + "_count", kind=kind.value) == len(measured), kind
        assert moved(latency + "_sum", kind=kind.value) == pytest.approx(
            sum(e.latency_ms for e in measured) / 1000, rel=1e-3, abs=0.01
        ), kind
    # every transcript took longer than the smallest bucket and less than the largest
    assert moved(latency + "_bucket", kind="transcript", le="0.1") < len(transcripts)
    assert moved(latency + "_bucket", kind="transcript", le="+Inf") == len(transcripts)
    assert moved("livetranslate_events_stored_total", kind="transcript") == len(transcripts)
    assert moved("livetranslate_events_stored_total", kind="end") == 1
    assert moved("livetranslate_store_failures_total") == 0
    assert value(after, "livetranslate_llm_breaker_open") == 0
