"""What is added to a stored session after its lines were spoken, by the `pipeline` model
(it owns every write to the sessions; the `sessions` model only reads):

- an organiser's correction of a transcript line (`livetranslate edit`): stored as a
  `correction` revision beside the original (nothing is overwritten), translated again into
  the session's languages, and sent to the viewers still connected;
- a summary with decisions and action items (`livetranslate summary`), made by the LLM from
  the stored transcript, in pieces, in the background lane;
- a speaker's name (`livetranslate speakers rename`): stored as a `speaker_name` event (the
  label and the name), which its connected viewers get; every surface shows the name;
- a late viewer's language: a viewer who joins in a language nobody read so far gets the
  earlier lines translated too, newest first, in the background lane, and only while no
  speaker's translation is under way (the live lines go first).

Each runs on a thread of its own; failures are told to whoever asked, never raised into Triton.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from livetranslate import deadline
from livetranslate.actions import SessionAction
from livetranslate.glossary import Glossary
from livetranslate.pipeline.guards import LlmBreaker, TranslationLoad
from livetranslate.pipeline.replies import Reply
from livetranslate.pipeline.sessions import ViewerLanguages
from livetranslate.pipeline.stages import Stages
from livetranslate.protocol import AUTO_LANGUAGE, Event, EventKind, ProtocolError
from livetranslate.stages.summary import SummaryError, summarize
from livetranslate.store.files import SessionInfo
from livetranslate.store.interface import Store

log = logging.getLogger("livetranslate.pipeline")

SUMMARY_PIECE_TIMEOUT_S = 300.0  # one piece of a summary: a long prompt and a long answer
MOST_WAITING_SUMMARIES = 4  # summaries waiting for their turn; more are refused
LIVE_FIRST_WAIT_S = 30.0  # a late line waits at most this long for the live translations


def best_lines(events: list[Event]) -> dict[int, Event]:
    """Each segment's transcript as readers get it: the latest correction in the spoken
    language, else the transcript (segment id -> event, in segment order)."""
    lines: dict[int, Event] = {}
    spoken: dict[int, str] = {}
    for event in events:
        if event.kind == EventKind.TRANSCRIPT and event.text.strip() and not event.error:
            lines[event.segment_id], spoken[event.segment_id] = event, event.language
    for event in events:
        if event.kind == EventKind.CORRECTION and event.segment_id in lines:
            if event.language == spoken[event.segment_id] or not event.language:
                lines[event.segment_id] = event
    return dict(sorted(lines.items()))


def translated_lines(events: list[Event], lines: dict[int, Event], language: str) -> dict[int, str]:
    """Each line's text in `language` as readers get it: its latest correction, else its
    sentence translation (segment id -> text; lines without one are left out)."""
    spoken = {sid: line.language for sid, line in lines.items()}
    texts: dict[int, str] = {}
    for event in events:
        if event.kind == EventKind.TRANSLATION and event.segment_id in lines and event.language == language:
            if event.text.strip() and not event.error:
                texts.setdefault(event.segment_id, event.text.strip())
    for event in events:
        if event.kind == EventKind.CORRECTION and event.segment_id in lines and event.language == language:
            if event.language != spoken[event.segment_id] and event.text.strip():
                texts[event.segment_id] = event.text.strip()
    return texts


def summary_text(events: list[Event], info: SessionInfo, target: str) -> tuple[list[str], str]:
    """What the LLM summarizes, and its language. A small LLM reads its own translations far
    better than the spoken language (bench/results/summary.md): the lines in `target`, else
    in the speaker's target, when nearly every line has one; else the transcript."""
    lines = best_lines(events)
    for language in dict.fromkeys((target, info.target_language)):
        texts = translated_lines(events, lines, language)
        if lines and len(texts) >= 0.8 * len(lines):
            return [texts[sid] for sid in sorted(texts)], language
    sources = collections.Counter(source_of(line, info) for line in lines.values())
    source = sources.most_common(1)[0][0] if sources else info.source_language
    return [line.text for line in lines.values()], source


def source_of(line: Event, info: SessionInfo) -> str:
    if line.language:
        return line.language
    return info.source_language if info.source_language != AUTO_LANGUAGE else ""


class Revisions:
    """Corrections, summaries and late viewers' languages for every session of one pipeline."""

    def __init__(
        self,
        store: Store,
        stages: Stages,
        languages: ViewerLanguages,
        breaker: LlmBreaker,
        translations: TranslationLoad,
        llm_timeout_s: float = 30.0,
    ):
        self.store, self.stages, self.languages = store, stages, languages
        self.breaker, self.translations, self.llm_timeout_s = breaker, translations, llm_timeout_s
        self._summaries = threading.BoundedSemaphore(1)  # one summary at a time: it is long work
        self._waiting = 0
        self._lock = threading.Lock()
        # (session, language) -> the last segment the late viewer's history had
        self._late: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._late_worker: threading.Thread | None = None
        self.stopping = False

    # --- an organiser's request ------------------------------------------------------------
    def request(self, request_id: int, data: bytes | str, reply: Reply) -> None:
        """One SESSION_ACTION request, answered on its own thread: the events it stored, then
        `end` (whose ERROR says why, when it failed)."""
        try:  # refused at once: an `end` that says why, as a viewer's refusal
            if not self.store.keeps:
                raise ProtocolError("this server keeps no sessions: there is nothing to correct or summarize")
            action = SessionAction.from_json(data)
            if self.store.info(action.session) is None:
                raise ProtocolError(f"no session named {action.session!r}")
        except ProtocolError as exc:
            reply.send(Event(EventKind.END, error=str(exc)))
            reply.close()
            return

        def run():
            try:
                if action.action == "edit":
                    self._edit(action, reply)
                elif action.action == "rename":
                    self._rename(action, reply)
                else:
                    self._summary(action, reply)
                reply.send(Event(EventKind.END))
            except (ProtocolError, SummaryError) as exc:
                reply.send(Event(EventKind.END, error=str(exc)))
            except Exception as exc:
                log.exception("session %s: %s failed", action.session, action.action)
                reply.send(Event(EventKind.END, error=f"{action.action} failed: {exc}"))
            finally:
                reply.close()

        threading.Thread(target=run, name=f"{action.action}-{request_id}", daemon=True).start()

    def _edit(self, action: SessionAction, reply: Reply) -> None:
        info = self._info(action.session)
        events = self.store.events(action.session)
        lines = best_lines(events)
        line = lines.get(action.segment_id)
        if line is None:
            known = f" (its lines are #{min(lines)} to #{max(lines)})" if lines else " (it has no lines yet)"
            raise ProtocolError(f"session {action.session!r} has no line #{action.segment_id}{known}")
        source = source_of(line, info)
        base: dict[str, Any] = dict(segment_id=line.segment_id, start_s=line.start_s, end_s=line.end_s)
        correction = Event(EventKind.CORRECTION, action.text, language=source, **base)
        self.store.annotate(action.session, correction)
        reply.send(correction)
        # into every language the line was read in, and the ones read now
        wanted = {info.target_language} | self.languages.of(action.session)
        wanted |= {e.language for e in events if e.kind == EventKind.TRANSLATION and e.segment_id == line.segment_id}
        glossary = Glossary.from_list(info.glossary)
        for language in sorted(x for x in wanted if x and x != source):
            # the glossary's names hold in any language; its pairs were written for the target
            terms = glossary if language == info.target_language else glossary.kept_as_is()
            try:
                text = self._llm(self.llm_timeout_s, self.stages.translate, action.text, source, language, "", terms)
            except Exception as exc:
                reply.send(
                    Event(EventKind.ERROR, f"the correction is stored; translating it into {language} failed: {exc}")
                )
                continue
            translated = Event(EventKind.CORRECTION, text, language=language, **base)
            self.store.annotate(action.session, translated)
            reply.send(translated)

    def _rename(self, action: SessionAction, reply: Reply) -> None:
        events = self.store.events(action.session)
        now: dict[int, str] = {}  # each line's speaker now: its transcript's label, or a later update's
        for e in events:
            if e.speaker and (
                e.kind == EventKind.SPEAKER_UPDATE or (e.kind == EventKind.TRANSCRIPT and e.segment_id not in now)
            ):
                now[e.segment_id] = e.speaker
        labels = set(now.values())
        if action.speaker not in labels:
            have = (
                f"its speakers are {', '.join(sorted(labels, key=lambda x: int(x[1:])))}" if labels else "it has none"
            )
            raise ProtocolError(f"session {action.session!r} has no speaker {action.speaker} ({have})")
        last = max((e.segment_id for e in events), default=-1)
        named = Event(EventKind.SPEAKER_NAME, action.text, segment_id=last, speaker=action.speaker)
        self.store.annotate(action.session, named)
        reply.send(named)

    def _summary(self, action: SessionAction, reply: Reply) -> None:
        with self._lock:
            if self._waiting >= MOST_WAITING_SUMMARIES:
                raise ProtocolError(f"{self._waiting} summaries are being made: ask again in a few minutes")
            self._waiting += 1
        try:
            with self._summaries:
                info = self._info(action.session)
                events = self.store.events(action.session)
                lines = list(best_lines(events).values())
                if not lines:
                    raise SummaryError(f"session {action.session!r} has no transcript to summarize yet")
                target = action.language or info.target_language
                texts, source = summary_text(events, info, target)
                text = summarize(
                    texts,
                    target,
                    lambda piece: self._llm(SUMMARY_PIECE_TIMEOUT_S, self.stages.summarize, piece, source, target),
                )
                last = lines[-1]
                event = Event(EventKind.SUMMARY, text, segment_id=last.segment_id, end_s=last.end_s, language=target)
                self.store.annotate(action.session, event)
                reply.send(event)
        finally:
            with self._lock:
                self._waiting -= 1

    def _info(self, session: str) -> SessionInfo:
        info = self.store.info(session)
        if info is None:
            raise ProtocolError(f"no session named {session!r}")
        return info

    def _llm(self, seconds: float, fn: Callable, *args):
        """A background LLM call with a time limit, through the background breaker."""
        self.breaker.check()
        try:
            with deadline.within(seconds):
                result = fn(*args)
        except TimeoutError:
            self.breaker.timed_out()
            raise
        self.breaker.answered()
        return result

    # --- a viewer who joined late --------------------------------------------------------
    def late_viewer(self, session: str, language: str, info: SessionInfo, history: list[Event]) -> None:
        """A viewer of `language` attached to `session` and got `history`: the lines in it
        are translated into `language` (the later ones are the live streams' work), unless it
        is the speaker's language or target (they have their text already)."""
        if not self.store.keeps or language in (info.target_language, info.source_language):
            return
        upto = max((e.segment_id for e in history if e.kind == EventKind.TRANSCRIPT), default=-1)
        if upto < 0:
            return
        with self._lock:
            key = (session, language)
            self._late[key] = max(upto, self._late.get(key, -1))  # once, however many viewers ask
            if self._late_worker is None:
                self._late_worker = threading.Thread(target=self._late_loop, name="late-viewers", daemon=True)
                self._late_worker.start()

    def _late_loop(self) -> None:
        """Runs the late languages' jobs one after the other, and ends when there are none."""
        while True:
            with self._lock:
                if not self._late or self.stopping:
                    self._late_worker = None
                    return
                (session, language), upto = self._late.popitem(last=False)
            try:
                self.catch_up(session, language, upto)
            except Exception as exc:
                log.warning("session %s: translating its earlier lines into %s failed: %s", session, language, exc)

    def catch_up(self, session: str, language: str, upto: int) -> int:
        """Translates the lines of `session` up to segment `upto` that have no `language` text
        yet, newest first, while someone still reads that language; returns how many it stored."""
        info = self.store.info(session)
        if info is None:
            return 0
        events = self.store.events(session)
        done = {
            e.segment_id
            for e in events
            if e.kind in (EventKind.TRANSLATION, EventKind.CORRECTION) and e.language == language and not e.error
        }
        todo = [line for sid, line in best_lines(events).items() if sid <= upto and sid not in done]
        glossary = Glossary.from_list(info.glossary).kept_as_is()
        stored = 0
        for line in reversed(todo):  # the newest first: what the reader is most likely to look at
            if self.stopping or language not in self.languages.of(session):
                return stored  # nobody reads it any more
            source = source_of(line, info)
            if source == language or not self.languages.claim(session, language, line.segment_id):
                continue  # its text is there already, or a live stream translates it
            self._live_first()
            try:
                text = self._llm(self.llm_timeout_s, self.stages.translate, line.text, source, language, "", glossary)
                error = ""
            except Exception as exc:
                text, error = "", f"translation failed: {exc}"
            base: dict[str, Any] = dict(
                segment_id=line.segment_id,
                start_s=line.start_s,
                end_s=line.end_s,
                language=language,
                speaker=line.speaker,
            )
            self.store.annotate(session, Event(EventKind.TRANSLATION, text, error=error, **base))
            stored += 1
        return stored

    def _live_first(self) -> None:
        """Waits while a speaker's translation is under way (a while at most)."""
        until = time.monotonic() + LIVE_FIRST_WAIT_S
        while self.translations.in_flight and time.monotonic() < until and not self.stopping:
            time.sleep(0.1)

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
