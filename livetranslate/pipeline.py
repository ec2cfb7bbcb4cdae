"""The `pipeline` model's logic: one StreamSession per gRPC stream.

A chunk goes: request -> StreamSession queue -> audio worker: PCM16 -> float -> 16 kHz
-> `vad` -> each closed utterance -> `whisper` (with the recent audio and committed text
as context: streaming.py) -> speech filter -> `transcript` event on that chunk's reply ->
translation worker: `translate` -> `translation` event, `enhance` -> `enhanced` events.
While an utterance is open, a third worker decodes it now and then into `partial`
events, on `whisper_partial` (idle CPU priority: a final preempts it) and never while a final
decode is under way. The workers keep each kind of event in order,
never let a transcript wait for a translation, and let `execute` return at once, so a
slow stream never holds up another one. A chunk's reply stays open (reference counted)
until the translations of the utterances it closed have been sent.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from livetranslate.asr import AsrRequest, SpeechFilter, Transcription
from livetranslate.audio import StreamResampler, pcm16_to_float
from livetranslate.protocol import (
    AUDIO,
    SUBSCRIBE,
    decode_text,
    Event,
    EventKind,
    ProtocolError,
    SAMPLE_RATE_HZ,
    SessionOptions,
    validate_audio_chunk,
    MAX_SESSION_NAME,
)
from livetranslate.state import StreamTable
from livetranslate.streaming import AudioHistory, DecodeOptions, StreamDecoder
from livetranslate.vad import Segment
from livetranslate.window import Enhanced, Piece

log = logging.getLogger("livetranslate.pipeline")


class Stages(Protocol):
    """How the pipeline reaches the other models (BLS inside Triton)."""

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]: ...

    def whisper(self, request: AsrRequest, partial: bool = False) -> Transcription: ...

    def translate(self, text: str, source: str, target: str, context: str = "") -> str: ...

    def enhance(self, stream_id: int, piece: Piece | None, source: str, target: str,
                start: bool, end: bool, check_complete: bool = True) -> list[Enhanced]: ...


class Reply(Protocol):
    """One request's response channel."""

    def send(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PipelineOptions:
    session_ttl_s: float = 120.0
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    # A translation (or enhance step) that takes longer is reported as failed and the
    # stream goes on; the late answer is dropped (a BLS child cannot be cancelled).
    llm_timeout_s: float = 30.0
    # After this many LLM calls in a row timed out (over all streams), calls fail at once for
    # llm_pause_s instead of each waiting out its timeout; then calls are tried again.
    llm_timeouts_to_pause: int = 2
    llm_pause_s: float = 30.0
    speech_filter: SpeechFilter = field(default_factory=SpeechFilter)
    limits: "Limits" = field(default_factory=lambda: Limits())


@dataclass(frozen=True)
class Limits:
    """What one server takes; the next one gets a clear refusal at once, and what runs
    already is untouched."""

    max_streams: int = 8  # speaker streams, all sessions
    max_streams_per_session: int = 2  # a reconnecting client overlaps its old stream
    max_viewers: int = 200
    max_viewers_per_session: int = 100
    # audio a stream may have waiting to be processed; the client paces itself on the
    # replies (see client.py), so only a client that ignores them meets this
    max_queued_s: float = 60.0


class Admission:
    """Counts of live speaker streams and viewers, per session and in all."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._lock = threading.Lock()
        self._streams: collections.Counter[str] = collections.Counter()
        self._viewers: collections.Counter[str] = collections.Counter()

    def _admit(self, counter: collections.Counter, session: str, most: int, most_per_session: int,
               what: str) -> None:
        with self._lock:
            if sum(counter.values()) >= most:
                raise ServerFull(f"server full: {most} {what}s are live, the most this server takes; "
                                 f"try again later or use another server")
            if counter[session] >= most_per_session:
                raise ServerFull(f"session {session!r} already has {most_per_session} {what}(s), the most "
                                 f"one session takes")
            counter[session] += 1

    def _leave(self, counter: collections.Counter, session: str) -> None:
        with self._lock:
            counter[session] -= 1
            if counter[session] <= 0:
                del counter[session]

    def admit_stream(self, session: str) -> None:
        self._admit(self._streams, session, self.limits.max_streams, self.limits.max_streams_per_session,
                    "speaker stream")

    def stream_left(self, session: str) -> None:
        self._leave(self._streams, session)

    def admit_viewer(self, session: str) -> None:
        self._admit(self._viewers, session, self.limits.max_viewers, self.limits.max_viewers_per_session,
                    "viewer")

    def viewer_left(self, session: str) -> None:
        self._leave(self._viewers, session)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return sum(self._streams.values()), sum(self._viewers.values())


class ServerFull(ProtocolError):
    pass


class SegmentIds:
    """Segment ids of each live session, shared by its streams: two streams of one session
    (a client reconnecting while its old stream still drains) never give out the same id."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next: dict[str, list[int]] = {}  # session -> [next id, streams holding it]

    def open(self, session: str, base: int) -> None:
        with self._lock:
            entry = self._next.setdefault(session, [base, 0])
            entry[0], entry[1] = max(entry[0], base), entry[1] + 1

    def close(self, session: str) -> None:
        with self._lock:
            entry = self._next.get(session)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._next[session]

    def peek(self, session: str) -> int:
        with self._lock:
            entry = self._next.get(session)
            return entry[0] if entry else -1

    def take(self, session: str) -> int:
        with self._lock:
            entry = self._next[session]
            entry[0] += 1
            return entry[0] - 1


class SharedReply:
    """A reply closed when its last holder lets go."""

    def __init__(self, reply: Reply):
        self._reply = reply
        self._holders = 1
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        self._reply.send(event)

    def hold(self) -> "SharedReply":
        with self._lock:
            self._holders += 1
        return self

    def close(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._reply.close()


@dataclass
class Chunk:
    audio: np.ndarray  # int16
    arrived: float  # time.monotonic() when the request reached the pipeline
    end: bool
    reply: Reply


class WhisperLoad:
    """How busy Whisper is, over all streams of this pipeline: final decodes under way,
    and the share of the last `window_s` spent decoding. Partials run only when no final
    is under way and the share is low."""

    def __init__(self, window_s: float = 4.0):
        self.window_s = window_s
        self._finals = 0
        self._calls: collections.deque[tuple[float, float]] = collections.deque()  # (start, end)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def decoding(self, final: bool):
        started = time.monotonic()
        with self._lock:
            self._finals += final
        try:
            yield
        finally:
            with self._lock:
                self._finals -= final
                self._calls.append((started, time.monotonic()))

    def allows_partial(self, max_busy: float) -> bool:
        now = time.monotonic()
        horizon = now - self.window_s
        with self._lock:
            if self._finals:
                return False
            while self._calls and self._calls[0][1] < horizon:
                self._calls.popleft()
            busy = sum(end - max(start, horizon) for start, end in self._calls)
        return busy / self.window_s < max_busy


class LlmUnavailable(RuntimeError):
    pass


class LlmBreaker:
    """A circuit breaker for the LLM, shared by all streams: a hung LLM would otherwise cost
    every translation and enhance call its whole timeout, and the stream's translations
    would fall minutes behind. Timeouts in a row open it; any answer (an error too: the LLM
    is responding) closes it. While open, calls fail at once; when the pause is over they
    go through again, and one more timeout opens it again. (pybreaker holds its lock during
    the call, which would serialise every stream's LLM calls; `circuitbreaker` has no lock.)"""

    def __init__(self, timeouts_to_open: int, pause_s: float, clock: Callable[[], float] = time.monotonic):
        self.timeouts_to_open, self.pause_s, self._clock = timeouts_to_open, pause_s, clock
        self._timeouts = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            left = self._open_until - self._clock()
        if left > 0:
            raise LlmUnavailable(f"the LLM did not answer {self.timeouts_to_open} calls in a row in time; "
                                 f"calls paused, next try in {left:.0f} s")

    def answered(self) -> None:
        with self._lock:
            self._timeouts = 0

    def timed_out(self) -> None:
        with self._lock:
            self._timeouts += 1
            if self._timeouts >= self.timeouts_to_open:
                self._open_until = self._clock() + self.pause_s
                self._timeouts = self.timeouts_to_open - 1  # after the pause, one more opens it again


@dataclass
class TranslationJob:
    transcript: Event | None  # None: end of stream (or a tick)
    spoken_at: float  # arrival of the utterance's end, for latency
    reply: SharedReply
    tick_s: float | None = None  # the speaker is silent at this audio time: a pause may end the window
    queued_at: float = field(default_factory=time.monotonic)


# A transcript that waited this long for the translation worker means the LLM is behind:
# its enhanced window skips the completeness check (one LLM call fewer per transcript).
BEHIND_S = 2.0


# After a transcript, while the speaker stays silent, `enhance` hears the stream's clock once a
# second (for up to 10 s), so a pause ends its window without waiting for the next utterance.
# The clock it hears lags by TICK_MARGIN_S: the VAD opens an utterance about 0.3 s into speech
# and starts it 0.3 s before (its padding ring), so a pause is only certain up to then.
TICK_EVERY_S, TICKS_AFTER_SPEECH, TICK_MARGIN_S = 1.0, 10, 0.6


class StreamSession:
    def __init__(self, stream_id: int, options: SessionOptions, stages: Stages, popts: PipelineOptions,
                 load: WhisperLoad | None = None, breaker: LlmBreaker | None = None,
                 ids: SegmentIds | None = None, on_closed: Callable[["StreamSession"], None] | None = None):
        self.stream_id = stream_id
        self._on_closed = on_closed
        self.options = options
        self.stages = stages
        self.popts = popts
        self._resampler = StreamResampler(options.sample_rate)
        self._queue: queue.Queue[Chunk | None] = queue.Queue()
        self._vad_started = False
        self._audio = AudioHistory()  # the 16 kHz audio handed to vad, recent part
        self._decoder = StreamDecoder(popts.decode, options.whisper_language)
        self._load = load or WhisperLoad()
        self._breaker = breaker or LlmBreaker(popts.llm_timeouts_to_pause, popts.llm_pause_s)
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=2000)
        self._ids = ids or SegmentIds()
        self._ids.open(options.session, options.segment_base)
        self._queued = 0  # samples submitted and not yet processed
        self._queued_lock = threading.Lock()
        self.failure = ""  # why the stream was stopped (its session could not be stored)
        self._t0 = options.time_base_s  # event times are on the session's clock
        # the open utterance, for partials: its first sample, its last voiced sample so far,
        # the reply to send on; guarded by _lock
        self._lock = threading.Lock()
        self._open: tuple[int, int, SharedReply] | None = None
        self._partial_due = threading.Event()
        self._closed = False
        if options.partials and popts.decode.partial_interval_s > 0:
            threading.Thread(target=self._partial_run, name=f"partial-{stream_id}", daemon=True).start()
        self._jobs: queue.Queue[TranslationJob | None] | None = None
        if options.translate:
            self._jobs = queue.Queue()
            self._llm_calls = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix=f"llm-{stream_id}")
            self._enhance_started = False
            self._spoken_at: dict[int, float] = {}
            self._ticks: list[float] = []  # audio times (session clock) at which to tick enhance
            self._enhance_source = options.source_language  # with `auto`: set by the first transcript
            threading.Thread(target=self._translate_run, name=f"translate-{stream_id}", daemon=True).start()
        # last: the worker may touch everything above
        threading.Thread(target=self._run, name=f"stream-{stream_id}", daemon=True).start()

    def submit(self, chunk: Chunk) -> None:
        """Queues a chunk; refuses it when the client sends far faster than the stream works
        (a client that paces itself on its replies never meets this)."""
        limit = self.popts.limits.max_queued_s * self.options.sample_rate
        with self._queued_lock:
            if not chunk.end and self._queued + len(chunk.audio) > limit:
                raise ProtocolError(
                    f"too much audio waiting ({self._queued / self.options.sample_rate:.0f} s): this stream sends "
                    f"faster than the server works; wait for the replies of earlier chunks (the chunk was dropped)")
            self._queued += len(chunk.audio)
        self._queue.put(chunk)

    def abandon(self) -> None:
        """Idle past the TTL, replaced, failed or shut down: free the vad and enhance state
        and stop the workers."""
        self._queue.put(None)

    def _closed_by_worker(self) -> None:
        self._ids.close(self.options.session)
        if self._on_closed is not None:
            self._on_closed(self)

    def fail(self, reason: str) -> None:
        """The stream cannot go on (its session cannot be stored): stop it."""
        if not self.failure:
            self.failure = reason
            self.abandon()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None or chunk.end:
                self._set_open(None, None)
            if chunk is None:
                self._closed_by_worker()
                try:  # vad may have dropped the sequence by its own TTL already
                    if self._vad_started:
                        self._call_vad(np.zeros(0, np.float32), end=True)
                except Exception as exc:
                    log.info("stream %s: vad flush of an abandoned stream: %s", self.stream_id, exc)
                finally:
                    if self._jobs is not None:
                        self._jobs.put(None)
                return
            with self._queued_lock:
                self._queued -= len(chunk.audio)
            reply = SharedReply(chunk.reply)
            try:
                if self.failure:
                    raise ProtocolError(self.failure)
                self._process(chunk, reply)
            except Exception as exc:  # one bad chunk must not end the stream
                log.exception("stream %s: chunk failed", self.stream_id)
                reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
            finally:
                if chunk.end:
                    self._finish(reply)
                reply.close()
            if chunk.end:
                self._closed_by_worker()
                return

    def _set_open(self, marker: Segment | None, reply: SharedReply | None) -> None:
        """Which utterance is open now and where its partials go; (None, None) closes the stream."""
        with self._lock:
            old, self._open = self._open, None
            if marker is not None and not self._closed:
                self._open = (marker.start_sample, marker.speech_end_sample, reply.hold())
            elif marker is None and reply is None:
                self._closed = True
        if old is not None:
            old[2].close()
        self._partial_due.set()

    def _call_vad(self, audio: np.ndarray, end: bool) -> list[Segment]:
        start = not self._vad_started
        self._vad_started = True
        return self.stages.vad(self.stream_id, audio, start=start, end=end)

    def _process(self, chunk: Chunk, reply: SharedReply) -> None:
        audio = self._resampler.process(pcm16_to_float(chunk.audio), last=chunk.end)
        self._audio.append(audio)
        self._arrivals.append((self._audio.end, chunk.arrived))
        marker = None
        for segment in self._call_vad(audio, end=chunk.end):
            if segment.is_open:
                marker = segment
            else:
                self._transcribe(segment, reply)
        if not chunk.end:
            self._set_open(marker, reply)
            self._tick(marker is not None, reply)

    def _tick(self, speaking: bool, reply: SharedReply) -> None:
        if self._jobs is None or not self._ticks:
            return
        if speaking:  # the next transcript sets new ticks
            self._ticks = []
        elif self.audio_end_s >= self._ticks[0]:
            now = self.audio_end_s
            self._ticks = [t for t in self._ticks if t > now]
            self._jobs.put(TranslationJob(None, 0.0, reply.hold(), tick_s=now - TICK_MARGIN_S))

    def _finish(self, reply: SharedReply) -> None:
        """Sequence end: `end` goes last, after the translations still being made."""
        if self._jobs is None:
            reply.send(self._end_event())
        else:
            self._jobs.put(TranslationJob(None, 0.0, reply.hold()))

    @property
    def audio_end_s(self) -> float:
        """The end of the audio received so far, on the session's clock."""
        return self._t0 + self._audio.end / SAMPLE_RATE_HZ

    def _end_event(self) -> Event:
        return Event(EventKind.END, end_s=self.audio_end_s)

    def _arrival_of(self, sample: int) -> float:
        """When the chunk holding this sample reached the server."""
        for end, arrived in self._arrivals:
            if end >= sample:
                return arrived
        return self._arrivals[-1][1] if self._arrivals else time.monotonic()

    def _decode(self, segment: Segment) -> tuple[Transcription, str]:
        """Whisper's answer for a closed utterance and its new words."""
        decoder, start, end = self._decoder, segment.start_sample, segment.end_sample
        plan = decoder.plan(self._audio, start, end, utterance_audio=segment.audio)
        with self._load.decoding(final=True):
            result = self.stages.whisper(plan.request)
            if decoder.retry_without_context(plan, result.text):
                plan = decoder.plan(self._audio, start, end, utterance_audio=segment.audio, use_context=False)
                result = self.stages.whisper(plan.request)
        return result, decoder.clean(plan, result.text)

    def _transcribe(self, segment: Segment, reply: SharedReply) -> None:
        try:
            result, text = self._decode(segment)
        except Exception as exc:
            reply.send(Event(EventKind.ERROR, f"whisper failed on {segment.start_s:.2f}-{segment.end_s:.2f} s: {exc}"))
            return
        keep = self.popts.speech_filter.keep(result) and text
        # a dropped utterance is committed empty: later context windows never span it
        self._decoder.commit(segment.start_sample, segment.end_sample, text if keep else "")
        if not keep:
            log.info("stream %s: dropped %r (no_speech %.2f, logprob %.2f)", self.stream_id,
                     result.text, result.no_speech_prob, result.avg_logprob)
            return
        spoken_at = self._arrival_of(segment.speech_end_sample)
        with self._lock:  # no partial of this segment may follow its transcript
            transcript = Event(
                EventKind.TRANSCRIPT,
                text,
                segment_id=self._ids.take(self.options.session),
                start_s=self._t0 + segment.start_s,
                end_s=self._t0 + segment.end_s,
                language=result.language,
                latency_ms=(time.monotonic() - spoken_at) * 1000,
            )
            reply.send(transcript)
        if self._jobs is not None:
            self._jobs.put(TranslationJob(transcript, spoken_at, reply.hold()))
            self._ticks = [transcript.end_s + TICK_EVERY_S * (i + 1) for i in range(TICKS_AFTER_SPEECH)]

    # --- partial worker ---------------------------------------------------------------
    def _partial_run(self) -> None:
        """Decodes the open utterance every `partial_interval_s` of new audio. Skipped
        whenever a final decode is under way anywhere in this pipeline, Whisper has been busy
        for most of the last seconds, this stream's audio is waiting to be processed, or the
        speaker has paused (the final is then due): under load partials go first."""
        opts = self.popts.decode
        interval, least, pause = (int(s * SAMPLE_RATE_HZ) for s in
                                  (opts.partial_interval_s, opts.partial_min_s, opts.partial_pause_s))
        last: tuple[int, int] = (-1, 0)  # (open start, audio end) of the last partial
        while True:
            self._partial_due.wait()
            self._partial_due.clear()
            with self._lock:
                if self._closed:
                    return
                current = self._open
            if current is None:
                continue
            start, voiced, end = current[0], current[1], self._audio.end
            since = end - (last[1] if last[0] == start else start + least - interval)
            if (since < interval or end - voiced > pause or not self._queue.empty()
                    or not self._load.allows_partial(opts.partial_max_busy)):
                continue
            last = (start, end)
            try:
                self._partial(start, end)
            except Exception:  # a partial is a preview: losing one is harmless
                log.exception("stream %s: partial failed", self.stream_id)

    def _partial(self, start: int, end: int) -> None:
        plan = self._decoder.plan(self._audio, start, end, partial=True)
        with self._load.decoding(final=False):
            result = self.stages.whisper(plan.request, partial=True)
        text = self._decoder.clean(plan, result.text)
        if not text or not self.popts.speech_filter.keep(result):
            return
        with self._lock:
            if self._open is None or self._open[0] != start:
                return  # the utterance closed meanwhile: its transcript is out, or coming
            self._open[2].send(Event(
                EventKind.PARTIAL, text, segment_id=self._ids.peek(self.options.session), start_s=self._t0 + start / SAMPLE_RATE_HZ,
                end_s=self._t0 + end / SAMPLE_RATE_HZ, language=result.language,
                latency_ms=(time.monotonic() - self._arrival_of(end)) * 1000,
            ))

    # --- translation worker -----------------------------------------------------------
    def _translate_run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:  # abandoned
                self._call_enhance(None, end=True, reply=None)
                self._llm_calls.shutdown(wait=False)
                return
            try:
                if job.tick_s is not None:
                    self._call_enhance(Piece(-1, "", job.tick_s, job.tick_s), end=False, reply=job.reply)
                    continue
                if job.transcript is None:
                    self._call_enhance(None, end=True, reply=job.reply)
                    job.reply.send(self._end_event())
                    self._llm_calls.shutdown(wait=False)
                    return
                self._translate(job)
            except Exception as exc:
                log.exception("stream %s: translation failed", self.stream_id)
                job.reply.send(Event(EventKind.ERROR, f"internal error in translation: {exc}"))
            finally:
                job.reply.close()

    def _translate(self, job: TranslationJob) -> None:
        t = job.transcript
        behind = time.monotonic() - job.queued_at > BEHIND_S
        source = t.language if self.options.source_language == "auto" else self.options.source_language
        target = self.options.target_language
        self._spoken_at[t.segment_id] = job.spoken_at
        if not self._enhance_started:  # with `auto`: the language of the first transcript
            self._enhance_source = source
        base = dict(segment_id=t.segment_id, start_s=t.start_s, end_s=t.end_s, language=target)
        try:
            text, error = self._in_time(self.stages.translate, t.text, source, target), ""
        except Exception as exc:
            text, error = "", f"translation failed: {exc}"
        latency = (time.monotonic() - job.spoken_at) * 1000
        job.reply.send(Event(EventKind.TRANSLATION, text, latency_ms=latency, error=error, **base))
        self._call_enhance(Piece(t.segment_id, t.text, t.start_s, t.end_s), end=False, reply=job.reply,
                           check_complete=not behind)

    def _in_time(self, fn, *args):
        self._breaker.check()
        future = self._llm_calls.submit(fn, *args)
        try:
            result = future.result(timeout=self.popts.llm_timeout_s)
        except concurrent.futures.TimeoutError:
            self._breaker.timed_out()
            raise TimeoutError(f"no answer within {self.popts.llm_timeout_s:.0f} s") from None
        except Exception:
            self._breaker.answered()
            raise
        self._breaker.answered()
        return result

    def _call_enhance(self, piece: Piece | None, end: bool, reply: SharedReply | None,
                      check_complete: bool = True) -> None:
        if not self._enhance_started and piece is None:
            return
        start, self._enhance_started = not self._enhance_started, True
        source = self._enhance_source
        try:
            results = self._in_time(self.stages.enhance, self.stream_id, piece, source, self.options.target_language,
                                    start, end, check_complete)
        except Exception as exc:
            if reply is not None and piece is not None and piece.text:
                reply.send(Event(EventKind.ENHANCED, "", segment_id=piece.segment_id,
                                 first_segment_id=piece.segment_id, error=f"enhanced translation failed: {exc}"))
            return
        for item in results if reply is not None else []:
            spoken_at = self._spoken_at.pop(item.last_segment_id, time.monotonic())
            reply.send(Event(
                EventKind.ENHANCED, item.text, segment_id=item.last_segment_id, start_s=item.start_s,
                end_s=item.end_s, language=self.options.target_language,
                latency_ms=(time.monotonic() - spoken_at) * 1000, first_segment_id=item.first_segment_id,
            ))


class RecordingReply:
    """Stores each event of a session before sending it; `end` closes the session. When
    the store fails (a full disk), the stream is stopped with an `end` that says why:
    nothing unstored is sent, and the stream's workers end."""

    def __init__(self, reply: Reply, store, session: str, stream: "StreamSession | None" = None,
                 close_session: Callable[[str], None] | None = None):
        self._reply, self._store, self._session, self._stream = reply, store, session, stream
        self._close_session = close_session or store.close

    def send(self, event: Event) -> None:
        if event.kind == EventKind.PARTIAL:  # interim: for the speaker's live view only
            self._reply.send(event)
            return
        if self._stream is not None and self._stream.failure:
            return  # the stream was stopped: its `end` went out already
        try:
            self._store.append(self._session, event)
            if event.kind == EventKind.TRANSCRIPT:
                self._store.sync_info(self._session)  # counts for `sessions list`
        except Exception as exc:
            log.error("session %s: storing an event failed: %s", self._session, exc)
            reason = f"the session could not be stored ({exc}); the stream was stopped"
            if self._stream is not None:
                self._stream.fail(reason)
            self._reply.send(Event(EventKind.END, end_s=event.end_s, error=reason))
            return
        self._reply.send(event)
        if event.kind == EventKind.END:
            self._close_session(self._session)

    def close(self) -> None:
        self._reply.close()


def follow(store, session: str, reply: Reply, *, max_events: int = 500,
           cancelled: Callable[[], bool] = lambda: False, poll_s: float = 0.5) -> None:
    """A viewer: the stored history of `session`, then its live events, until `end`, the
    viewer cancels, or it falls `max_events` behind (then it is told and dropped)."""
    from livetranslate.store import Viewer

    viewer = Viewer(max_events)

    def stop(message: str) -> None:  # the viewer's own failure: an `end` that carries it
        reply.send(Event(EventKind.END, error=message))

    def ended() -> Event | None:
        info = store.info(session)
        if info is None or info.state != "ended":
            return None
        return next((e for e in reversed(store.events(session)) if e.kind == EventKind.END), Event(EventKind.END))

    try:
        if store.info(session) is None:
            stop(f"no session named {session!r}")
            return
        # `end` events in the history close earlier runs of a resumed session: the viewer's
        # one `end` is the session's last
        for event in store.attach(session, viewer):
            if event.kind != EventKind.END:
                reply.send(event)
        while not cancelled():
            event = viewer.take(poll_s)
            if viewer.overflowed:
                stop(f"viewer fell more than {max_events} events behind and was dropped; subscribe again to catch up")
                return
            if event is not None:
                reply.send(event)
                if event.kind == EventKind.END:
                    return
            else:
                last = ended()  # also ends a session whose `end` was in the history
                if last is not None:
                    reply.send(last)
                    return
    finally:
        store.hub.unsubscribe(session, viewer)
        reply.close()


class Pipeline:
    """All open streams of one `pipeline` instance, and who may open more."""

    def __init__(self, stages: Stages, options: PipelineOptions = PipelineOptions(), store=None):
        self.stages = stages
        self.options = options
        self.store = store
        self.load = WhisperLoad()
        self.breaker = LlmBreaker(options.llm_timeouts_to_pause, options.llm_pause_s)
        self.admission = Admission(options.limits)
        self.ids = SegmentIds()
        self._unclosed: set[str] = set()
        self._unclosed_lock = threading.Lock()
        self.streams: StreamTable[StreamSession] = StreamTable(options.session_ttl_s, on_expire=self._expired)

    def _expired(self, stream_id: int, session: StreamSession) -> None:
        """A stream idle past the TTL (its client vanished)."""
        self._abandon(session, "the speaker's stream stopped sending and timed out")

    def _abandon(self, session: StreamSession, reason: str) -> None:
        """Stops a stream that will get no `end` from its client. Its session ends with it
        unless another stream (the client, reconnected) goes on with it; viewers are told."""
        session.abandon()
        if self.store is None or session.failure:  # a failed stream closed its session already
            return
        name = session.options.session
        try:
            if self.store.live_streams(name) <= 1:
                self.store.append(name, Event(EventKind.END, end_s=session.audio_end_s, error=reason))
        except Exception as exc:
            log.error("session %s: storing its end failed: %s", name, exc)
        finally:
            self._close_session(name)

    def _close_session(self, name: str) -> None:
        """Ends a stream's part in its session; a close the store could not write (a full
        disk) is tried again with each request until it is, so no session stays `live`."""
        try:
            self.store.close(name)
        except Exception as exc:
            log.error("session %s: closing it failed (tried again later): %s", name, exc)
            with self._unclosed_lock:
                self._unclosed.add(name)

    def _retry_closes(self) -> None:
        with self._unclosed_lock:
            names, self._unclosed = self._unclosed, set()
        for name in names:
            if self.store.live_streams(name) == 0:
                self._close_session(name)

    def _stream_closed(self, session: StreamSession) -> None:
        """Called once by each stream when its audio worker ends, on every path."""
        self.admission.stream_left(session.options.session)
        if self.store is not None and session.failure:
            self._close_session(session.options.session)

    def shutdown(self) -> None:
        """The server stops: every live stream ends, its viewers are told."""
        for stream_id in self.streams.keys():
            session = self.streams.pop(stream_id)
            if session is not None:
                self._abandon(session, "the server shut down")

    def _subscribe(self, stream_id: int, subscribe: np.ndarray, reply: Reply) -> None:
        if self.store is None:
            raise ProtocolError("this server keeps no sessions: nothing to subscribe to")
        name = decode_text(subscribe).strip()
        if not name or len(name) > MAX_SESSION_NAME or not name.isprintable():
            raise ProtocolError(f"SUBSCRIBE must name a session: 1 to {MAX_SESSION_NAME} printable characters")
        try:
            self.admission.admit_viewer(name)
        except ServerFull as exc:  # a viewer's own failure is an `end` that carries it
            reply.send(Event(EventKind.END, error=str(exc)))
            reply.close()
            return

        def run():
            try:
                follow(self.store, name, reply, cancelled=getattr(reply, "is_cancelled", lambda: False))
            finally:
                self.admission.viewer_left(name)

        threading.Thread(target=run, name=f"viewer-{stream_id}", daemon=True).start()

    def _start(self, stream_id: int, get: Callable[[str], np.ndarray | None], end: bool) -> StreamSession:
        options = SessionOptions.from_tensors(get, default_session=f"stream-{stream_id}")
        validate_audio_chunk(get(AUDIO), options.sample_rate, last=end)  # a bad first chunk opens nothing
        old = self.streams.pop(stream_id)
        if old is not None:  # a START on a live sequence id: the old stream ends first
            self._abandon(old, "a new stream started under the same sequence id")
        self.admission.admit_stream(options.session)
        try:
            if self.store is not None:
                next_segment, end_s = self.store.resume_point(options.session)
                options = dataclasses.replace(options, segment_base=max(options.segment_base, next_segment),
                                              time_base_s=max(options.time_base_s, end_s))
                self.store.open(options.session, options.source_language, options.target_language)
            session = StreamSession(stream_id, options, self.stages, self.options, self.load, self.breaker,
                                    self.ids, on_closed=self._stream_closed)
        except BaseException:
            self.admission.stream_left(options.session)
            raise
        self.streams.put(stream_id, session)
        return session

    def handle(
        self,
        stream_id: int,
        start: bool,
        end: bool,
        get: Callable[[str], np.ndarray | None],
        reply: Reply,
        arrived: float | None = None,
    ) -> None:
        """One request. Never raises: problems become `error` events on `reply`."""
        arrived = time.monotonic() if arrived is None else arrived
        self.streams.expire()
        if self._unclosed:
            self._retry_closes()
        try:
            subscribe = get(SUBSCRIBE)
            if subscribe is not None:
                self._subscribe(stream_id, subscribe, reply)
                return
            if start:
                try:
                    self._start(stream_id, get, end)
                except ServerFull as exc:  # the stream is over before it began: say so with its end
                    reply.send(Event(EventKind.END, error=str(exc)))
                    reply.close()
                    return
            session = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
            if session is None:
                raise ProtocolError(
                    "no open stream for this sequence: it was never started, failed to start, "
                    "was refused, ended, or idled out"
                )
            if session.failure:
                self.streams.pop(stream_id)
                raise ProtocolError(session.failure)
            try:
                audio = validate_audio_chunk(get(AUDIO), session.options.sample_rate, last=end)
            except ProtocolError as exc:
                if not end:
                    raise
                reply.send(Event(EventKind.ERROR, str(exc)))
                audio = np.zeros(0, np.int16)
            if self.store is not None:
                reply = RecordingReply(reply, self.store, session.options.session, session, self._close_session)
            session.submit(Chunk(audio, arrived, end, reply))
        except ProtocolError as exc:
            reply.send(Event(EventKind.ERROR, str(exc)))
            reply.close()
        except Exception as exc:  # e.g. the data dir is not writable: this stream fails, not the server
            log.exception("stream %s: request failed", stream_id)
            reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
            reply.close()


class LocalStages:
    """The same stages in this process, without Triton: for benches (the cost of Triton)
    and for tests of the stream logic. `translator`/`checker` are optional."""

    def __init__(self, engine, vad_options=None, translator=None, checker=None, window=None):
        from livetranslate.vad import Segmenter, VadOptions
        from livetranslate.window import WindowOptions

        self.engine = engine
        self._make = lambda: Segmenter(vad_options or VadOptions())
        self._segmenters: dict[int, Segmenter] = {}
        self.translator, self.checker = translator, checker
        self.window = window or WindowOptions()
        self._enhancers: dict = {}

    def translate(self, text: str, source: str, target: str, context: str = "") -> str:
        return self.translator.translate(text, source, target, context)

    def enhance(self, stream_id, piece, source, target, start, end, check_complete=True):
        from livetranslate.window import Enhancer

        if start:
            self._enhancers[stream_id] = Enhancer(
                self.window, lambda text, ctx: self.translate(text, source, target, ctx),
                lambda text: self.checker.check(text, source)[0])
        enhancer = self._enhancers[stream_id]
        out = enhancer.add(piece, check_complete) if piece is not None else []
        if end:
            out += enhancer.flush()
            del self._enhancers[stream_id]
        return out

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]:
        if start:
            self._segmenters[stream_id] = self._make()
        segments = self._segmenters[stream_id].process(audio, end)
        if end:
            del self._segmenters[stream_id]
        return segments

    def whisper(self, request: AsrRequest, partial: bool = False) -> Transcription:
        return self.engine.transcribe([request])[0]
