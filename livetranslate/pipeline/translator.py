"""The translation worker of a stream: each transcript -> `translate` -> `translation`, then
-> the stream's `enhance` sequence -> `enhanced` events. It runs beside the audio worker,
so a transcript never waits for the LLM. Every LLM call has a time limit and goes through
the pipeline's breaker: a hung LLM costs failed translations, not a stalled stream."""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import time

from livetranslate.enhance import Enhanced, Piece
from livetranslate.pipeline.messages import Abandon, Finish, KeepAlive, Silence, Translate
from livetranslate.pipeline.options import StreamContext
from livetranslate.pipeline.replies import SharedReply
from livetranslate.pipeline.sequences import EnhanceSequence
from livetranslate.protocol import AUTO_LANGUAGE, Event, EventKind

log = logging.getLogger("livetranslate.pipeline")

# A transcript that waited this long for the translation worker means the LLM is behind:
# its enhanced window skips the completeness check (one LLM call fewer per transcript).
BEHIND_S = 2.0


class Translator:
    def __init__(self, ctx: StreamContext, inbox: queue.Queue):
        self._ctx, self._inbox = ctx, inbox
        self._llm_calls = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix=f"llm-{ctx.stream_id}")
        self._enhance = EnhanceSequence(ctx.stages, ctx.sequence_id, ctx.options.target_language, ctx.shared.clock,
                                        ctx.popts.keepalive_s, self._in_time, self._bounded)
        self._enhance.source = ctx.options.source_language  # with `auto`: set by the first transcript
        self._enhance.glossary = ctx.options.glossary
        self._spoken_at: dict[int, float] = {}  # segment id -> arrival of its end, for latency

    def run(self) -> SharedReply | None:
        """Until Finish (returns its reply for `end`, which goes out after everything else)
        or Abandon. Ends the enhance sequence on either path."""
        try:
            while True:
                message = self._inbox.get()
                if isinstance(message, Abandon):
                    self._enhance.abandon()
                    return None
                reply = getattr(message, "reply", None)
                try:
                    if isinstance(message, Finish):
                        self._window(self._enhance.finish, reply)
                        return reply.hold()
                    if isinstance(message, Translate):
                        self._translate(message)
                    elif isinstance(message, Silence):
                        self._window(lambda: self._enhance.tick(message.now_s), reply)
                    elif isinstance(message, KeepAlive) and self._enhance.started:
                        self._window(self._enhance.touch, reply)
                except Exception as exc:
                    log.exception("stream %s: translation failed", self._ctx.stream_id)
                    if reply is not None:
                        reply.send(Event(EventKind.ERROR, f"internal error in translation: {exc}"))
                finally:
                    if reply is not None:
                        reply.close()
        finally:
            self._enhance.abandon()  # ended already after a Finish
            self._llm_calls.shutdown(wait=False)

    def _translate(self, job: Translate) -> None:
        t, options = job.transcript, self._ctx.options
        behind = time.monotonic() - job.queued_at > BEHIND_S
        source = t.language if options.source_language == AUTO_LANGUAGE else options.source_language
        target = options.target_language
        self._spoken_at[t.segment_id] = job.spoken_at
        if not self._enhance.started:  # with `auto`: the language of the first transcript
            self._enhance.source = source
        base = dict(segment_id=t.segment_id, start_s=t.start_s, end_s=t.end_s, language=target)
        try:
            text, error = self._in_time(self._ctx.stages.translate, t.text, source, target, "", options.glossary), ""
        except Exception as exc:
            text, error = "", f"translation failed: {exc}"
        latency = (time.monotonic() - job.spoken_at) * 1000
        job.reply.send(Event(EventKind.TRANSLATION, text, latency_ms=latency, error=error, **base))
        piece = Piece(t.segment_id, t.text, t.start_s, t.end_s)
        try:
            self._publish(self._enhance.add(piece, check_complete=not behind), job.reply)
        except Exception as exc:
            job.reply.send(Event(EventKind.ENHANCED, "", segment_id=piece.segment_id,
                                 first_segment_id=piece.segment_id, error=f"enhanced translation failed: {exc}"))

    def _window(self, step, reply: SharedReply | None) -> None:
        """A step of the window that adds no transcript (tick, keep-alive, flush): a failure
        loses at most that window's translation, and is logged."""
        try:
            self._publish(step(), reply)
        except Exception as exc:
            log.warning("stream %s: enhance: %s", self._ctx.stream_id, exc)

    def _publish(self, results: list[Enhanced], reply: SharedReply | None) -> None:
        for item in results:
            if reply is None:
                log.warning("stream %s: an enhanced translation with no request to answer on", self._ctx.stream_id)
                continue
            spoken_at = self._spoken_at.pop(item.last_segment_id, time.monotonic())
            reply.send(Event(
                EventKind.ENHANCED, item.text, segment_id=item.last_segment_id, start_s=item.start_s,
                end_s=item.end_s, language=self._ctx.options.target_language,
                latency_ms=(time.monotonic() - spoken_at) * 1000, first_segment_id=item.first_segment_id,
            ))

    def _in_time(self, fn, *args):
        """An LLM call: refused at once while the breaker is open, failed after the time limit."""
        self._ctx.shared.breaker.check()
        breaker = self._ctx.shared.breaker
        try:
            result = self._bounded(fn, *args)
        except TimeoutError:
            breaker.timed_out()
            raise
        except Exception:
            breaker.answered()
            raise
        breaker.answered()
        return result

    def _bounded(self, fn, *args):
        future = self._llm_calls.submit(fn, *args)
        try:
            return future.result(timeout=self._ctx.popts.llm_timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer within {self._ctx.popts.llm_timeout_s:.0f} s") from None
