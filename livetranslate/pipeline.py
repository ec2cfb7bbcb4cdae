"""The `pipeline` model's logic: one StreamSession per gRPC stream.

A chunk goes: request -> StreamSession queue -> audio worker: PCM16 -> float -> 16 kHz
-> `vad` -> each closed utterance -> `whisper` -> speech filter -> `transcript` event on
that chunk's reply -> translation worker: `translate` -> `translation` event, `enhance`
-> `enhanced` events. Two workers per stream keep each kind of event in order, never let
a transcript wait for a translation, and let `execute` return at once, so a slow stream
never holds up another one. A chunk's reply stays open (reference counted) until the
translations of the utterances it closed have been sent.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from livetranslate.asr import AsrRequest, SpeechFilter, Transcription, dedupe_boundary
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
)
from livetranslate.state import StreamTable
from livetranslate.vad import Segment
from livetranslate.window import Enhanced, Piece

log = logging.getLogger("livetranslate.pipeline")


class Stages(Protocol):
    """How the pipeline reaches the other models (BLS inside Triton)."""

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]: ...

    def whisper(self, request: AsrRequest) -> Transcription: ...

    def translate(self, text: str, source: str, target: str, context: str = "") -> str: ...

    def enhance(self, stream_id: int, piece: Piece | None, source: str, target: str,
                start: bool, end: bool) -> list[Enhanced]: ...


class Reply(Protocol):
    """One request's response channel."""

    def send(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PipelineOptions:
    session_ttl_s: float = 120.0
    prompt_segments: int = 2  # previous transcripts given to Whisper as context
    # Audio before the utterance given to Whisper too: it hears the start of the first
    # word in context instead of cold (bench meeting: WER 52 % -> 45 % with the prompt and
    # the prompt-copy fallback). Words repeated from the previous utterance are dropped.
    lead_in_s: float = 1.0
    # A translation (or enhance step) that takes longer is reported as failed and the
    # stream goes on; the late answer is dropped (a BLS child cannot be cancelled).
    llm_timeout_s: float = 30.0
    speech_filter: SpeechFilter = field(default_factory=SpeechFilter)


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


@dataclass
class TranslationJob:
    transcript: Event | None  # None: end of stream
    spoken_at: float  # arrival of the utterance's end, for latency
    reply: SharedReply


class StreamSession:
    def __init__(self, stream_id: int, options: SessionOptions, stages: Stages, popts: PipelineOptions):
        self.stream_id = stream_id
        self.options = options
        self.stages = stages
        self.popts = popts
        self._resampler = StreamResampler(options.sample_rate)
        self._queue: queue.Queue[Chunk | None] = queue.Queue()
        self._vad_started = False
        self._samples = 0  # 16 kHz samples handed to vad so far
        # recent chunks (first sample index, audio) for lead-in; joined only per utterance
        self._recent: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._last_end_sample = -(10**9)  # end of the previous transcribed utterance
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=2000)
        self._next_segment = options.segment_base
        self._t0 = options.time_base_s  # event times are on the session's clock
        self._history: collections.deque[str] = collections.deque(maxlen=max(1, popts.prompt_segments))
        self._jobs: queue.Queue[TranslationJob | None] | None = None
        if options.translate:
            self._jobs = queue.Queue()
            self._llm_calls = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix=f"llm-{stream_id}")
            self._enhance_started = False
            self._spoken_at: dict[int, float] = {}
            threading.Thread(target=self._translate_run, name=f"translate-{stream_id}", daemon=True).start()
        # last: the worker may touch everything above
        threading.Thread(target=self._run, name=f"stream-{stream_id}", daemon=True).start()

    def submit(self, chunk: Chunk) -> None:
        self._queue.put(chunk)

    def abandon(self) -> None:
        """Idle past the TTL: free the vad and enhance state and stop the workers."""
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                if self._vad_started:
                    self._call_vad(np.zeros(0, np.float32), end=True)
                if self._jobs is not None:
                    self._jobs.put(None)
                return
            reply = SharedReply(chunk.reply)
            try:
                self._process(chunk, reply)
            except Exception as exc:  # one bad chunk must not end the stream
                log.exception("stream %s: chunk failed", self.stream_id)
                reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
            finally:
                if chunk.end:
                    self._finish(reply)
                reply.close()
            if chunk.end:
                return

    def _call_vad(self, audio: np.ndarray, end: bool) -> list[Segment]:
        start = not self._vad_started
        self._vad_started = True
        return self.stages.vad(self.stream_id, audio, start=start, end=end)

    def _process(self, chunk: Chunk, reply: SharedReply) -> None:
        audio = self._resampler.process(pcm16_to_float(chunk.audio), last=chunk.end)
        self._samples += len(audio)
        self._arrivals.append((self._samples, chunk.arrived))
        self._remember(audio)
        for segment in self._call_vad(audio, end=chunk.end):
            self._transcribe(segment, reply)

    RECENT_S = 40.0  # > max utterance (15 s) + lead-in, with room

    def _remember(self, audio: np.ndarray) -> None:
        """Keeps chunks, not one growing array: nothing is copied on the audio path."""
        if len(audio):
            self._recent.append((self._samples - len(audio), audio))
        horizon = self._samples - int(self.RECENT_S * SAMPLE_RATE_HZ)
        while self._recent and self._recent[0][0] + len(self._recent[0][1]) < horizon:
            self._recent.popleft()

    def _audio_for(self, segment: Segment) -> np.ndarray:
        """The utterance with up to `lead_in_s` of the audio before it."""
        start = segment.start_sample - int(self.popts.lead_in_s * SAMPLE_RATE_HZ)
        parts = [(first, a) for first, a in self._recent
                 if first < segment.start_sample and first + len(a) > start]
        if not parts or parts[0][0] > start:
            start = parts[0][0] if parts else segment.start_sample
        if not parts:
            return segment.audio
        lead = np.concatenate([a for _, a in parts])[start - parts[0][0] : segment.start_sample - parts[0][0]]
        return np.concatenate([lead, segment.audio])

    def _finish(self, reply: SharedReply) -> None:
        """Sequence end: `end` goes last, after the translations still being made."""
        if self._jobs is None:
            reply.send(self._end_event())
        else:
            self._jobs.put(TranslationJob(None, 0.0, reply.hold()))

    def _end_event(self) -> Event:
        return Event(EventKind.END, end_s=self._t0 + self._samples / SAMPLE_RATE_HZ)

    def _arrival_of(self, sample: int) -> float:
        """When the chunk holding this sample reached the server."""
        for end, arrived in self._arrivals:
            if end >= sample:
                return arrived
        return self._arrivals[-1][1] if self._arrivals else time.monotonic()

    def _transcribe(self, segment: Segment, reply: SharedReply) -> None:
        request = AsrRequest(self._audio_for(segment), self.options.whisper_language, " ".join(self._history))
        try:
            result = self.stages.whisper(request)
        except Exception as exc:
            reply.send(Event(EventKind.ERROR, f"whisper failed on {segment.start_s:.2f}-{segment.end_s:.2f} s: {exc}"))
            return
        if not self.popts.speech_filter.keep(result):
            log.info("stream %s: dropped %r (no_speech %.2f, logprob %.2f)", self.stream_id,
                     result.text, result.no_speech_prob, result.avg_logprob)
            return
        heard_before = segment.start_sample - self.popts.lead_in_s * SAMPLE_RATE_HZ < self._last_end_sample
        self._last_end_sample = segment.end_sample
        if self._history and heard_before:  # the lead-in held the end of the previous utterance
            result = dataclasses.replace(result, text=dedupe_boundary(self._history[-1], result.text))
            if not result.text.strip():
                return
        self._history.append(result.text)
        spoken_at = self._arrival_of(segment.speech_end_sample)
        transcript = Event(
            EventKind.TRANSCRIPT,
            result.text,
            segment_id=self._next_segment,
            start_s=self._t0 + segment.start_s,
            end_s=self._t0 + segment.end_s,
            language=result.language,
            latency_ms=(time.monotonic() - spoken_at) * 1000,
        )
        reply.send(transcript)
        self._next_segment += 1
        if self._jobs is not None:
            self._jobs.put(TranslationJob(transcript, spoken_at, reply.hold()))

    # --- translation worker -----------------------------------------------------------
    def _translate_run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:  # abandoned
                self._call_enhance(None, end=True, reply=None)
                return
            try:
                if job.transcript is None:
                    self._call_enhance(None, end=True, reply=job.reply)
                    job.reply.send(self._end_event())
                    return
                self._translate(job)
            except Exception as exc:
                log.exception("stream %s: translation failed", self.stream_id)
                job.reply.send(Event(EventKind.ERROR, f"internal error in translation: {exc}"))
            finally:
                job.reply.close()

    def _translate(self, job: TranslationJob) -> None:
        t = job.transcript
        source = t.language if self.options.source_language == "auto" else self.options.source_language
        target = self.options.target_language
        self._spoken_at[t.segment_id] = job.spoken_at
        base = dict(segment_id=t.segment_id, start_s=t.start_s, end_s=t.end_s, language=target)
        try:
            text, error = self._in_time(self.stages.translate, t.text, source, target), ""
        except Exception as exc:
            text, error = "", f"translation failed: {exc}"
        latency = (time.monotonic() - job.spoken_at) * 1000
        job.reply.send(Event(EventKind.TRANSLATION, text, latency_ms=latency, error=error, **base))
        self._call_enhance(Piece(t.segment_id, t.text, t.start_s, t.end_s), end=False, reply=job.reply)

    def _in_time(self, fn, *args):
        future = self._llm_calls.submit(fn, *args)
        try:
            return future.result(timeout=self.popts.llm_timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer within {self.popts.llm_timeout_s:.0f} s") from None

    def _call_enhance(self, piece: Piece | None, end: bool, reply: SharedReply | None) -> None:
        if not self._enhance_started and piece is None:
            return
        start, self._enhance_started = not self._enhance_started, True
        source = self.options.source_language
        try:
            results = self._in_time(self.stages.enhance, self.stream_id, piece, source, self.options.target_language,
                                    start, end)
        except Exception as exc:
            if reply is not None and piece is not None:
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
    """Stores each event of a session before sending it; `end` closes the session."""

    def __init__(self, reply: Reply, store, session: str):
        self._reply, self._store, self._session = reply, store, session

    def send(self, event: Event) -> None:
        self._store.append(self._session, event)
        self._reply.send(event)
        if event.kind == EventKind.END:
            self._store.close(self._session)
        elif event.kind == EventKind.TRANSCRIPT:
            self._store.sync_info(self._session)  # counts for `sessions list`

    def close(self) -> None:
        self._reply.close()


def follow(store, session: str, reply: Reply, *, max_events: int = 500,
           cancelled: Callable[[], bool] = lambda: False, poll_s: float = 0.5) -> None:
    """A viewer: the stored history of `session`, then its live events, until `end`, the
    viewer cancels, or it falls `max_events` behind (then it is told and dropped)."""
    from livetranslate.store import Viewer

    viewer = Viewer(max_events)
    try:
        info = store.info(session)
        if info is None:
            reply.send(Event(EventKind.ERROR, f"no session named {session!r}"))
            return
        for event in store.attach(session, viewer):
            reply.send(event)
            if event.kind == EventKind.END and store.info(session).state == "ended":
                return
        if store.info(session).state == "ended":
            return
        while not cancelled():
            event = viewer.take(poll_s)
            if viewer.overflowed:
                reply.send(Event(EventKind.ERROR, f"viewer fell more than {max_events} events behind and was "
                                                  f"dropped; subscribe again to catch up"))
                return
            if event is not None:
                reply.send(event)
                if event.kind == EventKind.END:
                    return
    finally:
        store.hub.unsubscribe(session, viewer)
        reply.close()


class Pipeline:
    """All open streams of one `pipeline` instance."""

    def __init__(self, stages: Stages, options: PipelineOptions = PipelineOptions(), store=None):
        self.stages = stages
        self.options = options
        self.store = store
        self.streams: StreamTable[StreamSession] = StreamTable(options.session_ttl_s, on_expire=self._expired)

    def _expired(self, stream_id: int, session: StreamSession) -> None:
        session.abandon()
        if self.store is not None:
            self.store.close(session.options.session)

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
        try:
            subscribe = get(SUBSCRIBE)
            if subscribe is not None:
                if self.store is None:
                    raise ProtocolError("this server keeps no sessions: nothing to subscribe to")
                name = decode_text(subscribe).strip()
                threading.Thread(target=follow, args=(self.store, name, reply),
                                 kwargs={"cancelled": getattr(reply, "is_cancelled", lambda: False)},
                                 name=f"viewer-{stream_id}", daemon=True).start()
                return
            if start:
                options = SessionOptions.from_tensors(get, default_session=f"stream-{stream_id}")
                if self.store is not None:
                    self.store.open(options.session, options.source_language, options.target_language)
                old = self.streams.put(stream_id, StreamSession(stream_id, options, self.stages, self.options))
                if old is not None:
                    old.abandon()
            session = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
            if session is None:
                raise ProtocolError(
                    "no open stream for this sequence: it was never started, failed to start, "
                    "ended, or idled out"
                )
            try:
                audio = validate_audio_chunk(get(AUDIO), session.options.sample_rate, last=end)
            except ProtocolError as exc:
                if not end:
                    raise
                reply.send(Event(EventKind.ERROR, str(exc)))
                audio = np.zeros(0, np.int16)
            if self.store is not None:
                reply = RecordingReply(reply, self.store, session.options.session)
            session.submit(Chunk(audio, arrived, end, reply))
        except ProtocolError as exc:
            reply.send(Event(EventKind.ERROR, str(exc)))
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

    def enhance(self, stream_id, piece, source, target, start, end):
        from livetranslate.window import Enhancer

        if start:
            self._enhancers[stream_id] = Enhancer(
                self.window, lambda text, ctx: self.translate(text, source, target, ctx),
                lambda text: self.checker.check(text, source)[0])
        enhancer = self._enhancers[stream_id]
        out = enhancer.add(piece) if piece is not None else []
        if end:
            out += enhancer.flush()
            del self._enhancers[stream_id]
        return out

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]:
        if start:
            self._segmenters[stream_id] = self._make()
        segmenter = self._segmenters[stream_id]
        segments = segmenter.feed(audio)
        if end:
            segments += segmenter.flush()
            del self._segmenters[stream_id]
        return segments

    def whisper(self, request: AsrRequest) -> Transcription:
        return self.engine.transcribe([request])[0]
