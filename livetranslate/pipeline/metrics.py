"""What the pipeline reports to Prometheus, through one seam: `Metrics`.

The pipeline calls the verbs below (an event sent, a refusal, an event stored, a reading of
its gauges); a sink turns them into metric families. This base class is the sink that
reports nowhere (tests, the in-process code); livetranslate.triton.metrics.TritonMetrics
reports on Triton's own metrics endpoint (:8002/metrics), beside Triton's metrics.

Every family is listed in FAMILIES with its fixed label values: a label never holds a
session name or a stream id, so the number of series stays bounded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from livetranslate.periodic import Every
from livetranslate.protocol import Event, EventKind

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
# end of speech to the event: partials come in under a second, translations wait for the LLM
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)
LATENCY_KINDS = (EventKind.PARTIAL, EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.ENHANCED)
REFUSED_STREAM_REASONS = (
    "server_full",
    "session_full",
    "client_full",
    "too_fast",
    "draining",
    "session_elsewhere",
    "no_audio",
    "yielded",
    "no_key",
)
REFUSED_VIEWER_REASONS = ("server_full", "session_full", "client_full", "draining", "no_key")


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    help: str
    label: str = ""  # at most one label here, with a fixed set of values
    values: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def label_sets(self) -> list[dict[str, str]]:
        return [{self.label: v} for v in self.values] if self.label else [{}]


ACTIVE_STREAMS = Family("livetranslate_active_streams", GAUGE, "speaker streams live on this server")
ACTIVE_VIEWERS = Family("livetranslate_active_viewers", GAUGE, "viewers following a session on this server")
REFUSED_STREAMS = Family(
    "livetranslate_refused_streams_total",
    COUNTER,
    "speaker streams refused (server_full, session_full, client_full: the client's own quota, no_key: no known "
    "client key, draining, session_elsewhere: another server serves "
    "its session), chunks refused because the stream sent audio far faster than it is processed (too_fast), and "
    "live streams closed because they sent no audio for too long (no_audio), or for a while when a new speaker "
    "needed their place (yielded)",
    "reason",
    REFUSED_STREAM_REASONS,
)
REFUSED_VIEWERS = Family(
    "livetranslate_refused_viewers_total", COUNTER, "viewers refused", "reason", REFUSED_VIEWER_REASONS
)
EVENT_LATENCY = Family(
    "livetranslate_event_latency_seconds",
    HISTOGRAM,
    "end of speech (the arrival of its audio) to the event sent to the speaker; failed events are not counted",
    "kind",
    tuple(k.value for k in LATENCY_KINDS),
    LATENCY_BUCKETS_S,
)
TRANSLATION_BACKLOG = Family(
    "livetranslate_translation_backlog", GAUGE, "transcripts sent and still without their translation, all streams"
)
TRANSLATION_LAG = Family(
    "livetranslate_translation_lag_seconds",
    GAUGE,
    "how long the oldest transcript still without its translation has waited (0: none waits)",
)
QUEUED_AUDIO = Family(
    "livetranslate_queued_audio_max_seconds", GAUGE, "the most audio waiting to be processed in any one speaker stream"
)
LLM_BREAKER = Family(
    "livetranslate_llm_breaker_open", GAUGE, "1 while LLM calls are paused after timeouts in a row, else 0"
)
LLM_BACKGROUND_BREAKER = Family(
    "livetranslate_llm_background_breaker_open",
    GAUGE,
    "1 while the LLM's background calls (enhanced windows, viewers' languages) are paused "
    "after timeouts in a row, else 0",
)
EVENTS_STORED = Family(
    "livetranslate_events_stored_total",
    COUNTER,
    "events written to the session store",
    "kind",
    tuple(k.value for k in EventKind),
)
STORE_FAILURES = Family(
    "livetranslate_store_failures_total", COUNTER, "events the session store failed to write (the stream is stopped)"
)

FAMILIES = (
    ACTIVE_STREAMS,
    ACTIVE_VIEWERS,
    REFUSED_STREAMS,
    REFUSED_VIEWERS,
    EVENT_LATENCY,
    TRANSLATION_BACKLOG,
    TRANSLATION_LAG,
    QUEUED_AUDIO,
    LLM_BREAKER,
    LLM_BACKGROUND_BREAKER,
    EVENTS_STORED,
    STORE_FAILURES,
)


def series_names() -> set[str]:
    """Every series name the families put on the metrics endpoint (a histogram's three)."""
    names = set()
    for f in FAMILIES:
        names |= {f.name + s for s in ("_bucket", "_sum", "_count")} if f.kind == HISTOGRAM else {f.name}
    return names


@dataclass(frozen=True)
class Gauges:
    """One reading of the pipeline's state (Pipeline.gauges)."""

    streams: int = 0
    viewers: int = 0
    queued_audio_s: float = 0.0  # the most in one stream
    translation_backlog: int = 0
    translation_lag_s: float = 0.0
    llm_breaker_open: bool = False
    llm_background_breaker_open: bool = False


class Metrics:
    """What the pipeline reports. This one reports nowhere; a sink overrides the three
    primitives (increment, set, observe), and sets `sample_every_s` to have the pipeline's
    gauges read into it that often."""

    sample_every_s = 0.0

    def increment(self, family: Family, labels: dict[str, str] | None = None, by: float = 1.0) -> None:
        pass

    def set(self, family: Family, value: float) -> None:
        pass

    def observe(self, family: Family, value: float, labels: dict[str, str] | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    # --- what the pipeline reports --------------------------------------------------------
    def sent(self, event: Event) -> None:
        """An event went to the speaker: its latency, if it is a kind that has one."""
        if event.kind in LATENCY_KINDS and not event.error:
            self.observe(EVENT_LATENCY, event.latency_ms / 1000, {"kind": event.kind.value})

    def refused(self, what: str, reason: str) -> None:
        """A speaker stream (`what` = "stream") or a viewer was refused."""
        self.increment(REFUSED_STREAMS if what == "stream" else REFUSED_VIEWERS, {"reason": reason})

    @contextlib.contextmanager
    def storing(self, kind: EventKind):
        """Around a write of one event to the store: counted as stored, or as a failure."""
        try:
            yield
        except Exception:
            self.increment(STORE_FAILURES)
            raise
        self.increment(EVENTS_STORED, {"kind": kind.value})

    def gauges(self, g: Gauges) -> None:
        self.set(ACTIVE_STREAMS, g.streams)
        self.set(ACTIVE_VIEWERS, g.viewers)
        self.set(QUEUED_AUDIO, g.queued_audio_s)
        self.set(TRANSLATION_BACKLOG, g.translation_backlog)
        self.set(TRANSLATION_LAG, g.translation_lag_s)
        self.set(LLM_BREAKER, 1.0 if g.llm_breaker_open else 0.0)
        self.set(LLM_BACKGROUND_BREAKER, 1.0 if g.llm_background_breaker_open else 0.0)


NO_METRICS = Metrics()


class Sampler(Every):
    """Reads the gauges (`read`) every `every_s` on its own thread, until stopped: gauges
    such as a lag grow between the pipeline's own events, so they are sampled, not pushed."""

    def __init__(self, read: Callable[[], None], every_s: float):
        super().__init__(read, every_s, "metrics", "reading the pipeline's gauges")
