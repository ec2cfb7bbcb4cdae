"""One speaker stream, and everything it owns.

    request -> Stream.submit -> audio worker (transcriber.py) -> transcripts
                                  |-> partial worker (partials.py) -> partials
                                  '-> translation worker (translator.py) -> translations, enhanced
                                                       all workers done -> Stream.close -> `end`

The stream is created on the client's START and owns, until its close(): the audio history
and decoder state (held by its audio worker), its sequences in `vad` and `enhance` (each held
by the worker that uses it, ended explicitly by that worker, kept alive meanwhile:
sequences.py), its worker threads, its hold on the session's segment ids and on the stored
session (whose viewers hear the stream's end through the store). Every path ends in close(),
once: the client's end, an abandon (client gone, replaced, server shutdown) and a failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livetranslate.pipeline.mailboxes import TooFast, TranslationInbox
from livetranslate.pipeline.messages import Abandon, Chunk
from livetranslate.pipeline.options import (
    COUNTED_AUDIO_S,
    PipelineOptions,
    Shared,
    StreamContext,
)
from livetranslate.pipeline.partials import Latest, PartialWorker
from livetranslate.pipeline.replies import MeteredReply, Reply, SharedReply
from livetranslate.pipeline.sessions import RecordingReply, SessionHandle
from livetranslate.pipeline.stages import Stages
from livetranslate.pipeline.transcriber import AudioInbox, Transcriber
from livetranslate.pipeline.translator import Translator
from livetranslate.protocol import Event, EventKind, SessionOptions

log = logging.getLogger("livetranslate.pipeline")


@dataclass(frozen=True)
class StreamLoad:
    queued_audio_s: float  # audio waiting for the audio worker
    untranslated: int  # transcripts still without their translation
    oldest_untranslated: float | None  # when the oldest of them was handed over (time.monotonic)


class Stream:
    def __init__(
        self,
        stream_id: int,
        options: SessionOptions,
        stages: Stages,
        popts: PipelineOptions,
        shared: Shared,
        session: SessionHandle,
        on_closed: Callable[[Stream], None] = lambda stream: None,
    ):
        self.stream_id, self.options = stream_id, options
        self.failure = ""  # why the stream was stopped (its session could not be stored)
        self.abandoned = ""  # why it was abandoned: it gets no `end` from its client
        self.moving = False  # abandoned so that its client goes on on another server (a drain)
        self._shared, self._session, self._on_closed = shared, session, on_closed
        self._lock = threading.Lock()
        self._released = False
        self._final: SharedReply | None = None  # the last request's reply, for `end`
        shared.ids.open(options.session, options.segment_base)
        ctx = StreamContext(
            stream_id,
            shared.sequence_ids(),
            options,
            popts,
            stages,
            shared,
            lambda: self.failure,
            self.abandon,
            self._for_viewers,
        )
        self._inbox = AudioInbox(
            popts.limits.max_queued_s * options.sample_rate,
            options.sample_rate,
            shared.clock,
            COUNTED_AUDIO_S * options.sample_rate,
        )
        partials: Latest[Any] | None = Latest() if options.partials and popts.decode.partial_interval_s > 0 else None
        self._jobs = jobs = TranslationInbox() if options.translate else None
        self._transcriber = Transcriber(ctx, self._inbox, partials, jobs)
        runs = [("stream", self._transcriber.run)]
        if jobs is not None:
            runs.append(("translate", Translator(ctx, jobs).run))
        self._running = len(runs)  # the workers that may answer last; close() runs when none is left
        self._threads = [
            threading.Thread(target=self._work, args=(run,), name=f"{name}-{stream_id}", daemon=True)
            for name, run in runs
        ]
        if partials is not None:
            self._threads.append(
                threading.Thread(target=PartialWorker(ctx, partials).run, name=f"partial-{stream_id}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    @property
    def audio_end_s(self) -> float:
        return self._transcriber.audio_end_s

    @property
    def closed(self) -> bool:
        return self._released

    def reply_for(self, reply: Reply) -> Reply:
        """A request's reply: each event sent is measured; with a stored session, each event is
        stored before it is sent."""
        reply = MeteredReply(reply, self._shared.metrics)
        return RecordingReply(reply, self._session, lambda: self.failure, self.fail)

    def no_audio_s(self, now: float) -> float:
        """How long the client has sent no audio (COUNTED_AUDIO_S makes a difference); 0 while
        the client waits for the server (its audio still waiting, or after its last chunk)."""
        if self._inbox.client_waits:
            return 0.0
        return max(0.0, now - self._inbox.last_audio)

    def load(self) -> StreamLoad:
        """What waits in this stream now, for the pipeline's gauges."""
        backlog, oldest = self._jobs.untranslated() if self._jobs is not None else (0, None)
        return StreamLoad(self._inbox.queued_s, backlog, oldest)

    def _for_viewers(self, event: Event) -> None:
        """Stores an event only the session's viewers get (a translation into a viewer's
        language); when the store fails, the stream is stopped, as for its own events."""
        if self.failure:
            return
        try:
            self._session.record(event)
        except Exception as exc:
            log.error("session %s: storing an event failed: %s", self._session.name, exc)
            self.fail(f"the session could not be stored ({exc}); the stream was stopped")

    def submit(self, chunk: Chunk) -> None:
        """Queues a chunk (a LastChunk ends the stream); ProtocolError when the client sends
        far faster than the stream works."""
        try:
            self._inbox.put(chunk)
        except TooFast:
            self._shared.metrics.refused("stream", "too_fast")
            raise

    def abandon(self, reason: str, move_on: bool = False) -> None:
        """Stops the stream without a flush; its session stores an `end` saying why. With
        `move_on` (this server drains) a store shared by several servers keeps the session
        live for a while instead, so that its client goes on on another one."""
        with self._lock:
            if self.abandoned or self._released:
                return
            self.abandoned, self.moving = reason, move_on
        self._inbox.put(Abandon(reason))

    def fail(self, reason: str) -> None:
        """The stream cannot go on (its session cannot be stored): stop it."""
        with self._lock:
            if self.failure:
                return
            self.failure = reason
        self._inbox.put(Abandon(reason))

    def join(self, timeout_s: float) -> bool:
        """Waits for every worker thread; True when none is left."""
        for thread in self._threads:
            thread.join(timeout_s)
        return not any(t.is_alive() for t in self._threads)

    def _work(self, run: Callable[[], SharedReply | None]) -> None:
        final = None
        try:
            final = run()
        except BaseException:
            log.exception("stream %s: worker failed", self.stream_id)
        finally:
            with self._lock:
                self._running -= 1
                last, late = self._running == 0, self._released
                if final is not None:
                    self._final = final
            if late and final is not None:  # closed without this worker (shutdown): no `end`
                final.close()
            elif last:
                self.close()

    def close(self) -> None:
        """Frees what the stream holds beyond its workers, once, and sends `end` after a
        client's end. The workers call it when the last of them is done (each has ended the
        sequence it held); the server's shutdown calls it for a stream whose workers did not
        stop in time."""
        with self._lock:
            if self._released:
                return
            self._released = True
            final, self._final = self._final, None
        try:
            self._shared.ids.close(self.options.session)
            if final is not None:  # the client's end: `end` is the stream's last event
                final.send(Event(EventKind.END, end_s=self.audio_end_s))
                final.close()
            # a failed stream's session gets no stored `end`
            self._session.release(
                "" if self.failure else self.abandoned, self.audio_end_s, move_on=self.moving and not self.failure
            )
        finally:
            self._on_closed(self)
