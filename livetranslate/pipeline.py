"""The `pipeline` model's logic: one StreamSession per gRPC stream.

A chunk goes: request -> StreamSession queue -> worker thread: PCM16 -> float -> 16 kHz
-> `vad` -> each closed utterance -> `whisper` -> speech filter -> `transcript` event on
that chunk's reply. One worker per stream keeps each stream's events in order while
`execute` returns at once, so a slow stream never holds up another one.
"""

from __future__ import annotations

import collections
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
    Event,
    EventKind,
    ProtocolError,
    SAMPLE_RATE_HZ,
    SessionOptions,
    validate_audio_chunk,
)
from livetranslate.state import StreamTable
from livetranslate.vad import Segment

log = logging.getLogger("livetranslate.pipeline")


class Stages(Protocol):
    """How the pipeline reaches the other models (BLS inside Triton)."""

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]: ...

    def whisper(self, request: AsrRequest) -> Transcription: ...


class Reply(Protocol):
    """One request's response channel."""

    def send(self, event: Event) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PipelineOptions:
    session_ttl_s: float = 120.0
    prompt_segments: int = 2  # previous transcripts given to Whisper as context
    speech_filter: SpeechFilter = field(default_factory=SpeechFilter)


@dataclass
class Chunk:
    audio: np.ndarray  # int16
    arrived: float  # time.monotonic() when the request reached the pipeline
    end: bool
    reply: Reply


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
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=2000)
        self._next_segment = 0
        self._history: collections.deque[str] = collections.deque(maxlen=max(1, popts.prompt_segments))
        self._thread = threading.Thread(target=self._run, name=f"stream-{stream_id}", daemon=True)
        self._thread.start()

    def submit(self, chunk: Chunk) -> None:
        self._queue.put(chunk)

    def abandon(self) -> None:
        """Idle past the TTL: free the vad state and stop the worker."""
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                if self._vad_started:
                    self._call_vad(np.zeros(0, np.float32), end=True)
                return
            try:
                self._process(chunk)
            except Exception as exc:  # one bad chunk must not end the stream
                log.exception("stream %s: chunk failed", self.stream_id)
                chunk.reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
            finally:
                chunk.reply.close()
            if chunk.end:
                return

    def _call_vad(self, audio: np.ndarray, end: bool) -> list[Segment]:
        start = not self._vad_started
        self._vad_started = True
        return self.stages.vad(self.stream_id, audio, start=start, end=end)

    def _process(self, chunk: Chunk) -> None:
        audio = self._resampler.process(pcm16_to_float(chunk.audio), last=chunk.end)
        self._samples += len(audio)
        self._arrivals.append((self._samples, chunk.arrived))
        for segment in self._call_vad(audio, end=chunk.end):
            self._transcribe(segment, chunk.reply)
        if chunk.end:
            chunk.reply.send(Event(EventKind.END, end_s=self._samples / SAMPLE_RATE_HZ))

    def _arrival_of(self, sample: int) -> float:
        """When the chunk holding this sample reached the server."""
        for end, arrived in self._arrivals:
            if end >= sample:
                return arrived
        return self._arrivals[-1][1] if self._arrivals else time.monotonic()

    def _transcribe(self, segment: Segment, reply: Reply) -> None:
        request = AsrRequest(segment.audio, self.options.whisper_language, " ".join(self._history))
        try:
            result = self.stages.whisper(request)
        except Exception as exc:
            reply.send(Event(EventKind.ERROR, f"whisper failed on {segment.start_s:.2f}-{segment.end_s:.2f} s: {exc}"))
            return
        if not self.popts.speech_filter.keep(result):
            log.info("stream %s: dropped %r (no_speech %.2f, logprob %.2f)", self.stream_id,
                     result.text, result.no_speech_prob, result.avg_logprob)
            return
        self._history.append(result.text)
        latency_ms = (time.monotonic() - self._arrival_of(segment.speech_end_sample)) * 1000
        reply.send(
            Event(
                EventKind.TRANSCRIPT,
                result.text,
                segment_id=self._next_segment,
                start_s=segment.start_s,
                end_s=segment.end_s,
                language=result.language,
                latency_ms=latency_ms,
            )
        )
        self._next_segment += 1


class Pipeline:
    """All open streams of one `pipeline` instance."""

    def __init__(self, stages: Stages, options: PipelineOptions = PipelineOptions()):
        self.stages = stages
        self.options = options
        self.streams: StreamTable[StreamSession] = StreamTable(
            options.session_ttl_s, on_expire=lambda key, s: s.abandon()
        )

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
            if start:
                options = SessionOptions.from_tensors(get, default_session=f"stream-{stream_id}")
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
            session.submit(Chunk(audio, arrived, end, reply))
        except ProtocolError as exc:
            reply.send(Event(EventKind.ERROR, str(exc)))
            reply.close()


class LocalStages:
    """The same stages in this process, without Triton: for benches (the cost of Triton)
    and for tests of the stream logic."""

    def __init__(self, engine, vad_options=None):
        from livetranslate.vad import Segmenter, VadOptions

        self.engine = engine
        self._make = lambda: Segmenter(vad_options or VadOptions())
        self._segmenters: dict[int, Segmenter] = {}

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
