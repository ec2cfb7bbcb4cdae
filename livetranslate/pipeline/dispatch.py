"""The `pipeline` model's requests, routed: a START opens a Stream, audio goes to its
stream, a sequence end ends it, a SUBSCRIBE becomes a viewer. Also who may open more
(admission), and what happens to streams whose client vanished, and at shutdown."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

import numpy as np

from livetranslate.pipeline.guards import Admission, LlmBreaker, ServerFull, WhisperLoad
from livetranslate.pipeline.messages import Chunk, LastChunk
from livetranslate.pipeline.options import PipelineOptions, Shared
from livetranslate.pipeline.replies import Reply
from livetranslate.pipeline.sessions import SegmentIds, SessionKeeper
from livetranslate.pipeline.stages import Stages
from livetranslate.pipeline.stream import Stream
from livetranslate.pipeline.viewers import Viewers
from livetranslate.protocol import AUDIO, SUBSCRIBE, Event, EventKind, ProtocolError, SessionOptions, validate_audio_chunk
from livetranslate.state import StreamTable

log = logging.getLogger("livetranslate.pipeline")


class Pipeline:
    """All open streams of one `pipeline` instance."""

    def __init__(self, stages: Stages, options: PipelineOptions = PipelineOptions(), store=None,
                 clock: Callable[[], float] = time.monotonic):
        self.stages, self.options, self.store = stages, options, store
        self.shared = Shared(WhisperLoad(), LlmBreaker(options.llm_timeouts_to_pause, options.llm_pause_s),
                             SegmentIds(), clock)
        self.admission = Admission(options.limits)
        self.sessions = SessionKeeper(store) if store is not None else None
        self.viewers = Viewers(store, self.admission)
        self.streams: StreamTable[Stream] = StreamTable(options.session_ttl_s, on_expire=self._expired, clock=clock)
        self._open: set[Stream] = set()  # every stream not closed yet, in the table or not
        self._open_lock = threading.Lock()

    def _expired(self, stream_id: int, stream: Stream) -> None:
        """A stream idle past the TTL: its client vanished."""
        stream.abandon("the speaker's stream stopped sending and timed out")

    def _stream_closed(self, stream: Stream) -> None:
        """Called once by each stream, from its close(), on every path."""
        self.admission.stream_left(stream.options.session)
        with self._open_lock:
            self._open.discard(stream)

    def open_streams(self) -> list[Stream]:
        with self._open_lock:
            return list(self._open)

    def shutdown(self, wait_s: float = 10.0) -> None:
        """The server stops: every live stream ends (its sequences ended, its session told),
        within `wait_s`; a stream whose worker is stuck in a call is closed without it."""
        for stream_id in self.streams.keys():
            stream = self.streams.pop(stream_id)
            if stream is not None:
                stream.abandon("the server shut down")
        deadline = time.monotonic() + wait_s
        for stream in self.open_streams():
            if not stream.join(max(0.0, deadline - time.monotonic())):
                log.warning("stream %s: workers still busy at shutdown; closed without them", stream.stream_id)
                stream.close()

    def _start(self, stream_id: int, get: Callable[[str], np.ndarray | None], end: bool) -> Stream:
        options = SessionOptions.from_tensors(get, default_session=f"stream-{stream_id}")
        validate_audio_chunk(get(AUDIO), options.sample_rate, last=end)  # a bad first chunk opens nothing
        old = self.streams.pop(stream_id)
        if old is not None:  # a START on a live sequence id: the old stream ends first
            old.abandon("a new stream started under the same sequence id")
        self.admission.admit_stream(options.session)
        session = None
        try:
            if self.store is not None:
                next_segment, end_s = self.store.resume_point(options.session)
                options = dataclasses.replace(options, segment_base=max(options.segment_base, next_segment),
                                              time_base_s=max(options.time_base_s, end_s))
                session = self.sessions.open(options.session, options.source_language, options.target_language,
                                             options.glossary.to_list())
            stream = Stream(stream_id, options, self.stages, self.options, self.shared, session,
                            on_closed=self._stream_closed)
        except BaseException:
            self.admission.stream_left(options.session)
            if session is not None:
                session.release("", 0.0)
            raise
        with self._open_lock:
            self._open.add(stream)
        self.streams.put(stream_id, stream)
        return stream

    def handle(self, stream_id: int, start: bool, end: bool, get: Callable[[str], np.ndarray | None],
               reply: Reply, arrived: float | None = None) -> None:
        """One request. Never raises: problems become `error` events on `reply`."""
        arrived = time.monotonic() if arrived is None else arrived
        self.streams.expire()
        if self.sessions is not None:
            self.sessions.retry()
        try:
            subscribe = get(SUBSCRIBE)
            if subscribe is not None:
                self.viewers.subscribe(stream_id, subscribe, reply)
                return
            if start:
                try:
                    self._start(stream_id, get, end)
                except ServerFull as exc:  # the stream is over before it began: say so with its end
                    reply.send(Event(EventKind.END, error=str(exc)))
                    reply.close()
                    return
            stream = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
            if stream is not None and (stream.closed or stream.abandoned):
                self.streams.pop(stream_id)
                stream = None
            if stream is None:
                raise ProtocolError(
                    "no open stream for this sequence: it was never started, failed to start, "
                    "was refused, ended, or idled out"
                )
            if stream.failure:
                self.streams.pop(stream_id)
                raise ProtocolError(stream.failure)
            try:
                audio = validate_audio_chunk(get(AUDIO), stream.options.sample_rate, last=end)
            except ProtocolError as exc:
                if not end:
                    raise
                reply.send(Event(EventKind.ERROR, str(exc)))
                audio = np.zeros(0, np.int16)
            reply = stream.reply_for(reply)
            stream.submit((LastChunk if end else Chunk)(audio, arrived, reply))
        except ProtocolError as exc:
            reply.send(Event(EventKind.ERROR, str(exc)))
            reply.close()
        except Exception as exc:  # e.g. the data dir is not writable: this stream fails, not the server
            log.exception("stream %s: request failed", stream_id)
            reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
            reply.close()
