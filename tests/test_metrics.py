"""What the pipeline reports (livetranslate.pipeline.metrics), through the seam: a recording Metrics
and the scripted stages on a simulated clock (tests/scripted.py). No server; fast. The
Triton sink is checked against a stand-in for `triton_python_backend_utils`."""

import collections
import importlib
import sys
import threading
import time
import types

import numpy as np
import pytest
from scripted import (  # noqa: F401 (pytest fixtures, taken by name)
    Collect,
    FailingStore,
    ScriptedStages,
    Speaker,
    clock,
    kinds,
    silence,
    speech,
    stages,
    wait_for,
)

from livetranslate.pipeline import Limits, Pipeline, PipelineOptions
from livetranslate.pipeline import metrics as M
from livetranslate.pipeline.metrics import FAMILIES, Gauges, Metrics
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.protocol import SUBSCRIBE, Event, EventKind
from livetranslate.store import Hub, SessionStore

DECODE = DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)
LATENCY = M.EVENT_LATENCY.name


class Recorded(Metrics):
    """Records what the pipeline reports. A family or label value the code does not declare
    is kept in `invalid` (the calls come from worker threads, where a raise would be lost)."""

    def __init__(self, sample_every_s: float = 0.0):
        self.sample_every_s = sample_every_s
        self.counts: collections.Counter = collections.Counter()  # (family, label value) -> total
        self.values: dict[str, float] = {}  # gauge -> last value
        self.observed: dict[tuple, list[float]] = collections.defaultdict(list)
        self.readings = 0
        self.invalid: list = []
        self._lock = threading.Lock()

    def _key(self, family, labels, kind):
        if family not in FAMILIES or family.kind != kind or (labels or {}) not in family.label_sets():
            self.invalid.append((family.name, kind, labels))
        return family.name, next(iter((labels or {}).values()), "")

    def increment(self, family, labels=None, by=1.0):
        with self._lock:
            self.counts[self._key(family, labels, M.COUNTER)] += by

    def set(self, family, value):
        with self._lock:
            self._key(family, None, M.GAUGE)
            self.values[family.name] = value

    def observe(self, family, value, labels=None):
        with self._lock:
            self.observed[self._key(family, labels, M.HISTOGRAM)].append(value)

    def gauges(self, g):
        super().gauges(g)
        with self._lock:
            self.readings += 1

    def count(self, family, label=""):
        with self._lock:
            return self.counts[(family.name, label)]


def make_pipeline(stages, clock, metrics, store=None, **options):
    return Pipeline(
        stages,
        PipelineOptions(decode=options.pop("decode", DECODE), **options),
        store=store,
        clock=clock,
        metrics=metrics,
    )


def subscribe(pipeline, request_id, session, events):
    viewer = Collect(events)
    pipeline.handle(request_id, True, True, {SUBSCRIBE: np.array([session.encode()], dtype=np.object_)}.get, viewer)
    return viewer


def test_every_event_sent_to_the_speaker_is_measured_once_under_its_kind(stages, clock):
    metrics = Recorded()
    decode = DecodeOptions(
        policy="utterance", lead_in_s=0.0, prompt_segments=0, partial_interval_s=1.0, partial_min_s=1.0
    )
    pipeline = make_pipeline(stages, clock, metrics, decode=decode)
    speaker = Speaker(pipeline, clock, 1, partials=True)
    for word in (1, 2):
        for i in range(4):
            count = len(kinds(speaker.events, EventKind.PARTIAL))
            speaker.send(speech(word, 0.5))
            if i % 2:
                assert wait_for(lambda count=count: len(kinds(speaker.events, EventKind.PARTIAL)) > count)
        speaker.send(silence())
    speaker.quiet(4)  # a pause: the enhanced window goes out
    events = speaker.end()
    for kind in M.LATENCY_KINDS:
        sent = sorted(e.latency_ms / 1000 for e in kinds(events, kind))
        assert sent, kind
        assert sorted(metrics.observed[(LATENCY, kind.value)]) == pytest.approx(sent), kind
    assert set(k for k, _ in metrics.observed) == {LATENCY}
    assert sum(len(v) for v in metrics.observed.values()) == sum(len(kinds(events, k)) for k in M.LATENCY_KINDS)
    assert metrics.invalid == []


def test_a_failed_translation_is_not_a_latency(clock):
    class FailsOnWelt(ScriptedStages):
        def translate(self, text, source, target, context="", glossary=None):
            if "Welt" in text:
                raise RuntimeError("the LLM fell over")
            return super().translate(text, source, target, context, glossary)

    stages, metrics = FailsOnWelt(clock), Recorded()
    pipeline = make_pipeline(stages, clock, metrics)
    speaker = Speaker(pipeline, clock, 2)
    speaker.say(1, 2, 3)
    events = speaker.end()
    translations = kinds(events, EventKind.TRANSLATION)
    good = [e for e in translations if not e.error]
    assert len(good) == 2 and len(translations) == 3
    assert sorted(metrics.observed[(LATENCY, "translation")]) == pytest.approx(
        sorted(e.latency_ms / 1000 for e in good)
    )


def test_refusals_are_counted_by_reason(stages, clock, tmp_path):
    metrics = Recorded()
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    limits = Limits(max_streams=2, max_streams_per_session=1, max_viewers=1, max_queued_s=2.0)
    pipeline = make_pipeline(stages, clock, metrics, store=store, limits=limits)
    first = Speaker(pipeline, clock, 1, session="a")
    first.say(1)
    refused = Speaker(pipeline, clock, 2, session="a")  # the session's one stream is live
    refused.send(silence())
    assert refused.events[-1].kind == EventKind.END and "already has 1" in refused.events[-1].error
    second = Speaker(pipeline, clock, 3, session="b")
    second.say(1)
    Speaker(pipeline, clock, 4, session="c").send(silence())  # two streams live: the server is full
    watching = []
    viewer = subscribe(pipeline, 10, "a", watching)
    turned_away = []
    subscribe(pipeline, 11, "a", turned_away)
    assert turned_away[-1].kind == EventKind.END and "server full" in turned_away[-1].error

    stages.whisper_gate.clear()  # the stream's audio worker is stuck: its audio piles up
    second.send(speech(2), wait=False)
    second.send(silence(), wait=False)
    assert wait_for(lambda: pipeline.gauges().queued_audio_s == 0.0)  # the worker holds the silence
    for _ in range(3):  # 2 s may wait, the third second is refused
        second.send(speech(3), wait=False)
    assert "too much audio waiting" in kinds(second.events, EventKind.ERROR)[-1].text
    assert pipeline.gauges().queued_audio_s == pytest.approx(2.0)
    stages.whisper_gate.set()

    pipeline.drain("maintenance", wait_s=5)
    late = Speaker(pipeline, clock, 5, session="d")
    late.send(silence())
    assert "maintenance" in late.events[-1].error
    subscribe(pipeline, 12, "a", turned_away)
    assert "maintenance" in turned_away[-1].error
    viewer.cancelled = True

    assert {(k, v): n for (k, v), n in metrics.counts.items() if "refused" in k} == {
        ("livetranslate_refused_streams_total", "session_full"): 1,
        ("livetranslate_refused_streams_total", "server_full"): 1,
        ("livetranslate_refused_streams_total", "too_fast"): 1,
        ("livetranslate_refused_streams_total", "draining"): 1,
        ("livetranslate_refused_viewers_total", "server_full"): 1,
        ("livetranslate_refused_viewers_total", "draining"): 1,
    }
    assert metrics.invalid == []
    assert wait_for(lambda: pipeline.admission.counts() == (0, 0))


def test_gauges_read_streams_viewers_and_how_far_the_translations_are_behind(stages, clock, tmp_path):
    metrics = Recorded()
    pipeline = make_pipeline(stages, clock, metrics, store=SessionStore(tmp_path, hub=Hub(), fsync=False))
    assert pipeline.gauges() == Gauges()
    speaker = Speaker(pipeline, clock, 1, session="talk")
    stages.llm_gate.clear()  # the LLM hangs: transcripts wait for their translations
    speaker.say(1, wait=False)
    viewer = subscribe(pipeline, 10, "talk", [])
    speaker.say(2, 3, wait=False)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSCRIPT)) == 3)
    behind = pipeline.gauges()
    assert (behind.streams, behind.viewers, behind.translation_backlog) == (1, 1, 3)
    time.sleep(0.2)
    assert pipeline.gauges().translation_lag_s >= behind.translation_lag_s + 0.15
    pipeline.report_gauges()
    assert metrics.values["livetranslate_translation_backlog"] == 3
    assert metrics.values["livetranslate_active_streams"] == 1 and metrics.values["livetranslate_active_viewers"] == 1

    stages.llm_gate.set()
    assert wait_for(lambda: pipeline.gauges().translation_backlog == 0)
    assert pipeline.gauges().translation_lag_s == 0.0
    speaker.end()
    viewer.cancelled = True
    assert wait_for(lambda: pipeline.gauges() == Gauges())
    pipeline.report_gauges()
    assert metrics.values == {f.name: 0 for f in FAMILIES if f.kind == M.GAUGE}
    assert metrics.invalid == []


def test_the_breaker_gauge_opens_after_llm_timeouts(stages, clock):
    metrics = Recorded()
    pipeline = make_pipeline(stages, clock, metrics, llm_timeout_s=0.05, llm_timeouts_to_pause=1, llm_pause_s=60.0)
    speaker = Speaker(pipeline, clock, 1)
    assert not pipeline.gauges().llm_breaker_open
    stages.llm_gate.clear()
    speaker.say(1, 2)
    translations = kinds(speaker.events, EventKind.TRANSLATION)
    assert "no answer within" in translations[0].error and "calls paused" in translations[1].error
    assert pipeline.gauges().llm_breaker_open
    pipeline.report_gauges()
    assert metrics.values["livetranslate_llm_breaker_open"] == 1.0
    stages.llm_gate.set()
    speaker.end()


def test_each_stored_event_is_counted_by_kind_and_each_failed_write(stages, clock, tmp_path):
    metrics = Recorded()
    store = SessionStore(tmp_path / "ok", hub=Hub(), fsync=False)
    speaker = Speaker(make_pipeline(stages, clock, metrics, store=store), clock, 1, session="kept")
    speaker.say(1, 2)
    speaker.end()
    stored = collections.Counter(e.kind.value for e in store.events("kept"))
    assert stored[EventKind.TRANSCRIPT.value] == 2 and stored[EventKind.END.value] == 1
    assert {v: n for (k, v), n in metrics.counts.items() if k == M.EVENTS_STORED.name} == stored
    assert metrics.count(M.STORE_FAILURES) == 0

    metrics = Recorded()
    full = FailingStore(tmp_path / "full", ok=3, fsync=False)
    speaker = Speaker(make_pipeline(stages, clock, metrics, store=full), clock, 2, session="lost")
    speaker.say(1, 2, 3)
    assert wait_for(lambda: any(e.kind == EventKind.END and "could not be stored" in e.error for e in speaker.events))
    assert metrics.count(M.STORE_FAILURES) >= 1
    assert sum(n for (k, _), n in metrics.counts.items() if k == M.EVENTS_STORED.name) == len(full.events("lost")) == 3


def test_the_gauges_are_sampled_on_a_thread_that_ends_with_the_pipeline(stages, clock):
    metrics = Recorded(sample_every_s=0.02)
    pipeline = make_pipeline(stages, clock, metrics)
    assert wait_for(lambda: metrics.readings >= 3)
    assert "metrics" in [t.name for t in threading.enumerate()]
    pipeline.shutdown(wait_s=1)
    assert "metrics" not in [t.name for t in threading.enumerate()]
    readings = metrics.readings
    time.sleep(0.1)
    assert metrics.readings == readings
    # without a sink that samples there is no thread at all
    make_pipeline(stages, clock, M.NO_METRICS)
    assert "metrics" not in [t.name for t in threading.enumerate()]


def test_every_family_follows_the_prometheus_naming_rules():
    names = [f.name for f in FAMILIES]
    assert len(set(names)) == len(names)
    for f in FAMILIES:
        assert f.name.startswith("livetranslate_") and f.help
        assert f.name.endswith("_total") == (f.kind == M.COUNTER), f.name
        assert not f.name.endswith(("_ms", "_milliseconds")), f.name
        assert bool(f.buckets) == (f.kind == M.HISTOGRAM) and list(f.buckets) == sorted(f.buckets)
        assert len(f.values) == len(set(f.values)) and bool(f.label) == bool(f.values)


# --- the Triton sink, against a stand-in for triton_python_backend_utils -----------------
class FakeMetric:
    def __init__(self, family, labels, buckets):
        self.family, self.labels, self.buckets = family, labels, buckets
        self.value, self.observed = 0.0, []

    def increment(self, by):
        self.value += by

    def set(self, value):
        self.value = value

    def observe(self, value):
        self.observed.append(value)


class FakeFamily:
    COUNTER, GAUGE, HISTOGRAM = "COUNTER", "GAUGE", "HISTOGRAM"
    made: list = []

    def __init__(self, name, description, kind):
        self.name, self.description, self.kind = name, description, kind
        self.metrics = []
        FakeFamily.made.append(self)

    def Metric(self, labels, buckets=None):
        if (buckets is not None) != (self.kind == self.HISTOGRAM):
            raise ValueError("buckets go with histograms only")  # as Triton answers
        self.metrics.append(FakeMetric(self, labels, buckets))
        return self.metrics[-1]


@pytest.fixture
def triton_metrics(monkeypatch):
    FakeFamily.made = []
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", types.SimpleNamespace(MetricFamily=FakeFamily))
    monkeypatch.delitem(sys.modules, "livetranslate.triton.metrics", raising=False)
    return importlib.import_module("livetranslate.triton.metrics").TritonMetrics()


def test_the_triton_sink_creates_every_series_at_start_and_reports_into_them(triton_metrics):
    made = {f.name: f for f in FakeFamily.made}
    assert set(made) == {f.name for f in FAMILIES}
    for family in FAMILIES:
        assert made[family.name].kind == family.kind.upper()
        assert [m.labels for m in made[family.name].metrics] == family.label_sets()
    triton_metrics.refused("viewer", "draining")
    triton_metrics.refused("viewer", "no such reason")  # logged, not raised: a stream must not fail on it
    triton_metrics.sent(Event(EventKind.TRANSCRIPT, "Hallo.", latency_ms=1500))
    triton_metrics.gauges(Gauges(streams=2, translation_lag_s=3.5, llm_breaker_open=True))

    def metric(name, **labels):
        return next(m for m in made[name].metrics if m.labels == labels)

    assert metric("livetranslate_refused_viewers_total", reason="draining").value == 1
    assert metric(LATENCY, kind="transcript").observed == [1.5]
    assert metric(LATENCY, kind="transcript").buckets == list(M.LATENCY_BUCKETS_S)
    assert metric("livetranslate_active_streams").value == 2
    assert metric("livetranslate_translation_lag_seconds").value == 3.5
    assert metric("livetranslate_llm_breaker_open").value == 1.0
    triton_metrics.close()
    triton_metrics.gauges(Gauges(streams=5))  # after close: nothing reported, nothing raised
    assert metric("livetranslate_active_streams").value == 2
