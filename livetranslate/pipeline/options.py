"""How the `pipeline` model is set up (its config.pbtxt parameters), what all its streams
share, and what every worker of one stream knows."""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from livetranslate import settings
from livetranslate.pipeline.guards import (
    Limits,
    LlmBreaker,
    TranslationLoad,
    WhisperLoad,
)
from livetranslate.pipeline.metrics import NO_METRICS, Metrics
from livetranslate.pipeline.sessions import SegmentIds, ViewerLanguages
from livetranslate.pipeline.stages import Stages
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.pipeline.voices import Voices
from livetranslate.protocol import Event, SessionOptions
from livetranslate.stages.whisper import SpeechFilter

# a stream counts as sending audio again once this much more has come in (many tiny requests
# add up; a request of a few samples every minute does not keep a place)
COUNTED_AUDIO_S = 0.1
# `serve --no-audio-s/--no-audio-yield-s` reach the pipeline through these (over its parameters)
NO_AUDIO_ENV = {"no_audio_s": "LIVETRANSLATE_NO_AUDIO_S", "no_audio_yield_s": "LIVETRANSLATE_NO_AUDIO_YIELD_S"}


def no_audio_settings(params: dict[str, str], environ: Mapping[str, str] | None = None) -> dict[str, float]:
    """PipelineOptions' no_audio_s and no_audio_yield_s: from `serve`'s options (its settings),
    else the `pipeline` parameters, else the defaults."""
    out = {}
    for name, variable in NO_AUDIO_ENV.items():
        value = settings.get(variable, environ)
        out[name] = float(value if value is not None else params.get(name) or getattr(PipelineOptions, name))
    return out


@dataclass(frozen=True)
class PipelineOptions:
    # A stream without a request for this long is abandoned: its client vanished (the
    # pipeline's own sequence idle timeout; Triton drops the sequence then).
    session_ttl_s: float = 120.0
    # A speaker stream that sent no audio for this long is closed (its client is told on its
    # next request, its place is freed, its session kept: a reconnect goes on with it). Audio
    # counts once another COUNTED_AUDIO_S of it came in, silence too: a paused meeting still
    # sends audio. 0: never.
    no_audio_s: float = 60.0
    # When the server (or a session) is full, a new speaker takes the place of the stream that
    # sent no audio for longest, if for more than this. 0: never.
    no_audio_yield_s: float = 15.0
    # A stream touches the sequences it holds in `vad` and `enhance` when it has not used
    # them for this long: well under their idle timeouts, so they never expire under it.
    keepalive_s: float = 30.0
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    # A translation (or enhance step) that takes longer is reported as failed and the
    # stream goes on; the late answer is dropped (a BLS child cannot be cancelled).
    llm_timeout_s: float = 30.0
    # After this many LLM calls in a row timed out (over all streams), calls fail at once for
    # llm_pause_s instead of each waiting out its timeout; then calls are tried again.
    llm_timeouts_to_pause: int = 2
    llm_pause_s: float = 30.0
    # Which model makes the speaker's translations (guards.TranslationLoad): `auto` (the large
    # model unless a translation would come later than `translation_budget_s` after its speech;
    # then the llm's fast lane, the small model, and its note says so), `large`, or `small`
    # (the large model then makes only the enhanced ones). The small model changes meanings
    # the large one keeps (bench/results/traps.md).
    basic_model: str = "auto"
    translation_budget_s: float = 4.0
    speech_filter: SpeechFilter = field(default_factory=SpeechFilter)
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Shared:
    """What all streams of one pipeline share (each is safe to use from any thread)."""

    load: WhisperLoad
    # LLM calls for the speakers' translations; every call is refused while it is open
    breaker: LlmBreaker
    ids: SegmentIds
    clock: Callable[[], float] = time.monotonic  # stream TTLs and keep-alives
    # ids for the sequences streams hold in `vad` and `enhance`, one per stream
    sequence_ids: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__)
    # the languages each session's viewers asked for: streams translate into those too
    languages: ViewerLanguages = field(default_factory=ViewerLanguages)
    metrics: Metrics = NO_METRICS  # where latencies and refusals are reported
    # the speakers' translations in flight: which model the next one gets
    translations: TranslationLoad = field(default_factory=lambda: TranslationLoad(4.0))
    # background LLM calls (enhance steps, viewers' languages): their timeouts (an LLM too
    # busy for them, or hung) pause only them, never the speakers' translations
    background_breaker: LlmBreaker = field(default_factory=lambda: LlmBreaker(2, 30.0))
    # each session's speakers, shared by its streams here (labels go on across a reconnect)
    voices: Voices = field(default_factory=Voices)
    # the `speakers` model's calls, made while Whisper decodes the same utterance
    embedder: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="speakers")
    )


@dataclass(frozen=True)
class StreamContext:
    """What every worker of one stream knows: set at start, never changed."""

    stream_id: int  # the client's sequence id
    sequence_id: int  # this stream's sequences in `vad` and `enhance`
    options: SessionOptions
    popts: PipelineOptions
    stages: Stages
    shared: Shared
    failure: Callable[[], str]  # why the stream was stopped; "" while it runs
    abandon: Callable[[str], None]  # the stream stops itself (its client went silent)
    # stores an event for the session's viewers only (not sent to the speaker; with the null
    # store, NoStore, nothing is kept and there are no viewers)
    record: Callable[[Event], None]

    @property
    def t0(self) -> float:
        """Event times are on the session's clock: a resumed session goes on from here."""
        return self.options.time_base_s
