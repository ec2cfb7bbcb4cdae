"""The translation worker of a stream: each transcript -> `translate` -> `translation`, then
-> the stream's `enhance` sequence -> `enhanced` events. It runs beside the audio worker,
so a transcript never waits for the LLM. Every LLM call has a time limit and goes through
a breaker: a hung LLM costs failed translations, not a stalled stream. The limit travels
with the call (livetranslate.deadline), so the stages drop work given up on. The speaker's
translations and the background calls (enhance steps, viewers' languages) have breakers of
their own: an LLM too busy for its background work still makes the sentence translations.

The speaker's translation is urgent work for the LLM (livetranslate.stages.llm.lanes): while it is
generated its text so far goes out as `partial_translation` events (when the stream has
partials on). A translation expected too late (livetranslate.pipeline.guards.TranslationLoad)
is made by the small model, and its event says so in `note`. The enhance steps run on a
thread of their own, in order: the next sentence's translation never waits for a window.

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
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from livetranslate import deadline
from livetranslate.pipeline.mailboxes import TranslationInbox
from livetranslate.pipeline.messages import (
    Abandon,
    Finish,
    KeepAlive,
    Silence,
    Translate,
)
from livetranslate.pipeline.options import StreamContext
from livetranslate.pipeline.replies import SharedReply
from livetranslate.pipeline.sequences import EnhanceSequence
from livetranslate.protocol import AUTO_LANGUAGE, Event, EventKind
from livetranslate.stages.enhance import Enhanced, Piece

log = logging.getLogger("livetranslate.pipeline")

# A transcript that waited this long for the translation worker means the LLM is behind:
# its enhanced window skips the completeness check (one LLM call fewer per transcript).
BEHIND_S = 2.0
# An enhance step that starts this long after the end of its transcript's speech (the LLM is
# behind) still adds the transcript to the window, but a window it closes is dropped
# untranslated: an enhanced translation that late helps no reader, and skipping it lets the
# LLM catch up (the sentence translations stand). The enhanced latency stays bounded by this
# plus one window's translation.
ENHANCE_MAX_LAG_S = 5.0
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
        # the translation, an enhance step and a call of each that timed out may be in flight
        self._llm_calls = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix=f"llm-{ctx.stream_id}")
        # the enhance steps, one at a time in order, beside the translations
        self._enhancing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"enhance-{ctx.stream_id}")
        self._enhance_waiting = 0  # steps submitted and not finished
        self._waiting_lock = threading.Lock()
        self._abandoned = False
        self._enhance = EnhanceSequence(
            ctx.stages,
            ctx.sequence_id,
            ctx.options.target_language,
            ctx.shared.clock,
            ctx.popts.keepalive_s,
            self._in_background,
            self._bounded,
        )
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
                    return None
                reply = getattr(message, "reply", None)
                try:
                    if isinstance(message, Finish):
                        self._in_order(self._enhance.finish, reply).result()
                        while self._for_viewers:  # stored before the session's `end`
                            self._viewer_translation(self._for_viewers.popleft())
                        return reply.hold() if reply is not None else None
                    if isinstance(message, Translate):
                        self._translate(message)
                    elif isinstance(message, Silence):
                        self._in_order(lambda now_s=message.now_s: self._enhance.tick(now_s), reply)
                    elif isinstance(message, KeepAlive) and self._enhance.started:
                        self._in_order(self._enhance.touch, reply)
                except Exception as exc:
                    log.exception("stream %s: translation failed", self._ctx.stream_id)
                    if reply is not None:
                        reply.send(Event(EventKind.ERROR, f"internal error in translation: {exc}"))
                finally:
                    if reply is not None:
                        reply.close()
        finally:
            # the steps still waiting are dropped; the one under way ends (within its time
            # limit), then the sequence ends (at once, when a Finish ended it already)
            self._abandoned = True
            ended = self._enhancing.submit(self._enhance.abandon)
            self._enhancing.shutdown(wait=False)
            try:
                ended.result(timeout=self._ctx.popts.llm_timeout_s + 5)
            except Exception as exc:
                log.info("stream %s: ending its enhance sequence: %s", self._ctx.stream_id, exc)
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
        behind = time.monotonic() - job.queued_at > BEHIND_S or self._enhance_waiting > 1
        source = t.language if options.source_language == AUTO_LANGUAGE else options.source_language
        target = options.target_language
        self._spoken_at[t.segment_id] = job.spoken_at
        if not self._enhance.started:  # with `auto`: the language of the first transcript
            self._enhance.source = source
        base: dict[str, Any] = dict(
            segment_id=t.segment_id, start_s=t.start_s, end_s=t.end_s, language=target, speaker=t.speaker
        )
        try:
            text, error, note = self._spoken_translation(job, source, target, base)
            latency = (time.monotonic() - job.spoken_at) * 1000
            job.reply.send(Event(EventKind.TRANSLATION, text, latency_ms=latency, error=error, note=note, **base))
        finally:  # its enhanced window comes after: the transcript no longer waits for the LLM
            self._inbox.translated()
        # viewers' languages: after the speaker's own work
        for language in sorted(self._ctx.shared.languages.of(options.session) - {target, source}):
            self._for_viewers.append(ForViewers(t, source, language, job.spoken_at))
        piece = Piece(t.segment_id, t.text, t.start_s, t.end_s, t.speaker)

        def add():
            translate_window = time.monotonic() - job.spoken_at <= ENHANCE_MAX_LAG_S
            try:
                return self._enhance.add(piece, check_complete=not behind, translate_window=translate_window)
            except Exception as exc:
                # in the stream's language, as a made one would be: viewers get what is in theirs
                job.reply.send(
                    Event(
                        EventKind.ENHANCED,
                        "",
                        first_segment_id=piece.segment_id,
                        error=f"enhanced translation failed: {exc}",
                        **base,
                    )
                )
                return []

        self._in_order(add, job.reply)

    def _spoken_translation(self, job: Translate, source: str, target: str, base: dict) -> tuple[str, str, str]:
        """(text, error, note) of the speaker's translation; its text so far goes out as
        `partial_translation` events while it is generated."""
        load, options = self._ctx.shared.translations, self._ctx.options
        lag_s = time.monotonic() - job.spoken_at
        fast = load.choose_fast(lag_s)
        on_interim, done = None, threading.Event()
        if options.partials:

            def on_interim(text: str) -> None:
                if not done.is_set():  # never after the translation (a late one, after a time-out)
                    job.reply.send(
                        Event(
                            EventKind.PARTIAL_TRANSLATION,
                            text,
                            latency_ms=(time.monotonic() - job.spoken_at) * 1000,
                            **base,
                        )
                    )

        try:
            with load.translating(fast):
                made = self._in_time(
                    lambda: self._ctx.stages.translate_urgent(
                        job.transcript.text,
                        source,
                        target,
                        options.glossary,
                        fast=fast,
                        on_interim=on_interim,
                    )
                )
        except Exception as exc:
            return "", f"translation failed: {exc}", ""
        finally:
            done.set()
        note = (
            f"made by the small model: the translations were {lag_s:.0f} s behind the speech"
            if made.fast and load.model == "auto"
            else ""
        )
        return made.text, "", note

    def _viewer_translation(self, job: ForViewers) -> None:
        """One transcript into one viewer language, stored for the viewers; nothing when the
        last viewer of that language left meanwhile."""
        languages, t = self._ctx.shared.languages, job.transcript
        if job.language not in languages.of(self._ctx.options.session):
            return
        if not languages.claim(self._ctx.options.session, job.language, t.segment_id):
            return  # a late viewer's catching up translates it
        waited = time.monotonic() - job.queued_at
        if waited > VIEWER_LANGUAGE_MAX_WAIT_S:
            text, error = "", f"not translated: the translations were {waited:.0f} s behind the speaker"
        else:
            try:
                # the glossary's names hold in any language; its pairs were written for the speaker's
                text, error = (
                    self._in_background(
                        self._ctx.stages.translate,
                        t.text,
                        job.source,
                        job.language,
                        "",
                        self._ctx.options.glossary.kept_as_is(),
                    ),
                    "",
                )
            except Exception as exc:
                text, error = "", f"translation failed: {exc}"
        try:
            self._ctx.record(
                Event(
                    EventKind.TRANSLATION,
                    text,
                    segment_id=t.segment_id,
                    start_s=t.start_s,
                    end_s=t.end_s,
                    language=job.language,
                    speaker=t.speaker,
                    error=error,
                    latency_ms=(time.monotonic() - job.spoken_at) * 1000,
                )
            )
        except Exception:
            log.exception("stream %s: a translation into %s was lost", self._ctx.stream_id, job.language)

    def _in_order(self, step, reply: SharedReply | None) -> concurrent.futures.Future:
        """A step of the enhance sequence, run after the ones before it on the enhance thread;
        its results go out on `reply` (held until then). A failure loses at most that window's
        translation, and is logged. Steps still waiting when the stream is abandoned are dropped."""
        held = reply.hold() if reply is not None else None
        with self._waiting_lock:
            self._enhance_waiting += 1

        def run():
            try:
                if not self._abandoned:
                    self._publish(step(), held)
            except Exception as exc:
                log.warning("stream %s: enhance: %s", self._ctx.stream_id, exc)
            finally:
                with self._waiting_lock:
                    self._enhance_waiting -= 1
                if held is not None:
                    held.close()

        return self._enhancing.submit(run)

    def _publish(self, results: list[Enhanced], reply: SharedReply | None) -> None:
        for item in results:
            if reply is None:
                log.warning("stream %s: an enhanced translation with no request to answer on", self._ctx.stream_id)
                continue
            spoken_at = self._spoken_at.pop(item.last_segment_id, time.monotonic())
            reply.send(
                Event(
                    EventKind.ENHANCED,
                    item.text,
                    segment_id=item.last_segment_id,
                    start_s=item.start_s,
                    end_s=item.end_s,
                    language=self._ctx.options.target_language,
                    latency_ms=(time.monotonic() - spoken_at) * 1000,
                    first_segment_id=item.first_segment_id,
                )
            )

    def _in_time(self, fn, *args):
        """The speaker's LLM call: refused at once while the breaker is open, failed after the
        time limit."""
        return self._through(self._ctx.shared.breaker, fn, *args)

    def _in_background(self, fn, *args):
        """A background LLM call (an enhance step, a viewer's language): as `_in_time`, but its
        timeouts open the background breaker only."""
        self._ctx.shared.breaker.check()
        return self._through(self._ctx.shared.background_breaker, fn, *args)

    def _through(self, breaker, fn, *args):
        breaker.check()
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
        """`fn(*args)`, given up after the time limit; the calls it makes carry the limit on
        (livetranslate.deadline), so the stages drop the work once it is given up."""
        future = self._llm_calls.submit(deadline.run_until, time.monotonic() + self._ctx.popts.llm_timeout_s, fn, *args)
        try:
            return future.result(timeout=self._ctx.popts.llm_timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer within {self._ctx.popts.llm_timeout_s:.0f} s") from None
