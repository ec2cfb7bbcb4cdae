"""The translation worker of a stream: each transcript -> `translate` -> `translation`, then
-> the stream's `enhance` sequence -> `enhanced` events. It runs beside the audio worker,
so a transcript never waits for the LLM. Every LLM call has a time limit and goes through
the pipeline's breaker: a hung LLM costs failed translations, not a stalled stream.

Viewers may ask for other languages than the speaker's target. Each transcript is then also
translated into each of them, once per language however many viewers share it, and stored
for the viewers (the speaker never gets these). That work waits in the worker's own backlog
and is done only when no message of the speaker's waits and no final Whisper decode runs:
the speaker's language and transcripts go first.
Extra languages get sentence translations only, no enhanced window: a window per language
would add its completeness checks and window translations to the LLM's load, and the LLM is
what limits a stream on a small machine."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import time
from dataclasses import dataclass, field

from livetranslate.enhance import Enhanced, Piece
from livetranslate.pipeline.mailboxes import TranslationInbox
from livetranslate.pipeline.messages import Abandon, Finish, KeepAlive, Silence, Translate
from livetranslate.pipeline.options import StreamContext
from livetranslate.pipeline.replies import SharedReply
from livetranslate.pipeline.sequences import EnhanceSequence
from livetranslate.protocol import AUTO_LANGUAGE, Event, EventKind

log = logging.getLogger("livetranslate.pipeline")

# A transcript that waited this long for the translation worker means the LLM is behind:
# its enhanced window skips the completeness check (one LLM call fewer per transcript).
BEHIND_S = 2.0
# A translation into a viewer's language that waited longer than this (the LLM is busy with
# the speaker's own) is stored as failed instead of made: captions that late help nobody,
# and the backlog stays bounded.
VIEWER_LANGUAGE_MAX_WAIT_S = 20.0


@dataclass(frozen=True)
class ForViewers:
    """A transcript to translate into a language only viewers asked for."""

    transcript: Event
    source: str
    language: str
    spoken_at: float
    queued_at: float = field(default_factory=time.monotonic)


class Translator:
    def __init__(self, ctx: StreamContext, inbox: TranslationInbox):
        self._ctx, self._inbox = ctx, inbox
        self._llm_calls = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix=f"llm-{ctx.stream_id}")
        self._enhance = EnhanceSequence(ctx.stages, ctx.sequence_id, ctx.options.target_language, ctx.shared.clock,
                                        ctx.popts.keepalive_s, self._in_time, self._bounded)
        self._enhance.source = ctx.options.source_language  # with `auto`: set by the first transcript
        self._enhance.glossary = ctx.options.glossary
        self._spoken_at: dict[int, float] = {}  # segment id -> arrival of its end, for latency
        self._for_viewers: collections.deque[ForViewers] = collections.deque()

    def run(self) -> SharedReply | None:
        """Until Finish (returns its reply for `end`, which goes out after everything else)
        or Abandon. Ends the enhance sequence on either path."""
        try:
            while True:
                message = self._next()
                if isinstance(message, Abandon):
                    self._enhance.abandon()
                    return None
                reply = getattr(message, "reply", None)
                try:
                    if isinstance(message, Finish):
                        self._window(self._enhance.finish, reply)
                        while self._for_viewers:  # stored before the session's `end`
                            self._viewer_translation(self._for_viewers.popleft())
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

    def _next(self):
        """The speaker's next message; while none waits and no final Whisper decode runs (the
        LLM and Whisper share the CPU), the viewers' translations are made."""
        while self._for_viewers:
            try:
                return self._inbox.get_nowait()
            except queue.Empty:
                pass
            if self._ctx.shared.load.final_under_way:
                try:
                    return self._inbox.get(timeout=0.05)
                except queue.Empty:
                    continue
            self._viewer_translation(self._for_viewers.popleft())
        return self._inbox.get()

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
            try:
                text, error = self._in_time(self._ctx.stages.translate, t.text, source, target, "",
                                            options.glossary), ""
            except Exception as exc:
                text, error = "", f"translation failed: {exc}"
            latency = (time.monotonic() - job.spoken_at) * 1000
            job.reply.send(Event(EventKind.TRANSLATION, text, latency_ms=latency, error=error, **base))
        finally:  # its enhanced window comes after: the transcript no longer waits for the LLM
            self._inbox.translated()
        if self._ctx.record is not None:  # viewers' languages: after the speaker's own work
            for language in sorted(self._ctx.shared.languages.of(options.session) - {target, source}):
                self._for_viewers.append(ForViewers(t, source, language, job.spoken_at))
        piece = Piece(t.segment_id, t.text, t.start_s, t.end_s)
        try:
            self._publish(self._enhance.add(piece, check_complete=not behind), job.reply)
        except Exception as exc:
            job.reply.send(Event(EventKind.ENHANCED, "", segment_id=piece.segment_id,
                                 first_segment_id=piece.segment_id, error=f"enhanced translation failed: {exc}"))

    def _viewer_translation(self, job: ForViewers) -> None:
        """One transcript into one viewer language, stored for the viewers; nothing when the
        last viewer of that language left meanwhile."""
        if job.language not in self._ctx.shared.languages.of(self._ctx.options.session):
            return
        t = job.transcript
        waited = time.monotonic() - job.queued_at
        if waited > VIEWER_LANGUAGE_MAX_WAIT_S:
            text, error = "", f"not translated: the translations were {waited:.0f} s behind the speaker"
        else:
            try:
                # the glossary's names hold in any language; its pairs were written for the speaker's
                text, error = self._in_time(self._ctx.stages.translate, t.text, job.source, job.language, "",
                                            self._ctx.options.glossary.kept_as_is()), ""
            except Exception as exc:
                text, error = "", f"translation failed: {exc}"
        try:
            self._ctx.record(Event(EventKind.TRANSLATION, text, segment_id=t.segment_id, start_s=t.start_s,
                                   end_s=t.end_s, language=job.language, error=error,
                                   latency_ms=(time.monotonic() - job.spoken_at) * 1000))
        except Exception:
            log.exception("stream %s: a translation into %s was lost", self._ctx.stream_id, job.language)

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
