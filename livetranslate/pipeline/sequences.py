"""The sequences a stream holds open in the sequence-stateful stages, `vad` and `enhance`.

Triton drops a sequence that idles past its model's `max_sequence_idle_microseconds` without
telling anyone, and the next request of that sequence then fails. A stream's sequence is
therefore started by its first request, touched by the stream whenever it has been quiet for
`keepalive_s` (well under every idle timeout), and ended explicitly when the stream closes,
on every path. Should a stage lose it all the same (a stage whose process died is reloaded
empty), the next request starts it again: `vad` from where the audio is, `enhance` with an
empty window. Each sequence is used by one worker thread only, under an id of its stream's
own (never the client's sequence id: a client may START a new stream under the id of one
still ending).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np

from livetranslate.glossary import NO_GLOSSARY
from livetranslate.stages.enhance import Enhanced, Piece, Tick
from livetranslate.stages.vad import Boundaries, Ongoing, Utterance

log = logging.getLogger("livetranslate.pipeline")

T = TypeVar("T")
# what a stage answers for a sequence it does not hold: Triton's sequence batcher, our models
LOST = ("must specify the START flag", "no open vad stream", "no open enhance stream")


class StageSequence:
    def __init__(self, stage: str, sequence_id: int, clock: Callable[[], float], keepalive_s: float):
        self.stage, self.sequence_id, self._clock, self.keepalive_s = stage, sequence_id, clock, keepalive_s
        self.started = self.ended = False  # as far as the stage answered
        self.restarts = 0
        self._used = clock()

    def _send(self, request: Callable[[bool, bool], T], end: bool = False, recover: bool = True) -> T:
        """`request(start, end)` with this sequence's flags: START until the stage answered one.
        A sequence the stage lost is started again (`_restarted` first), once per request."""
        start = not self.started
        try:
            answer = request(start, end)
        except TimeoutError:
            # given up on, not refused: the stage may hold the sequence now. It counts as
            # started, so the stream's end ends it (a stage that has none says so, and the
            # next request starts it again).
            self.started = True
            raise
        except Exception as exc:
            if start or not recover or not any(lost in str(exc) for lost in LOST):
                raise
            log.warning("sequence %s: %s lost it (%s); starting it again", self.sequence_id, self.stage, exc)
            self.restarts += 1
            self._restarted()
            answer = request(True, end)
        self.started, self.ended, self._used = True, self.ended or end, self._clock()
        return answer

    def _restarted(self) -> None:
        pass

    @property
    def due(self) -> bool:
        """Open and quiet for `keepalive_s`: touch it now."""
        return self.started and not self.ended and self._clock() - self._used >= self.keepalive_s


class VadSequence(StageSequence):
    def __init__(self, stages, sequence_id: int, clock: Callable[[], float], keepalive_s: float):
        super().__init__("vad", sequence_id, clock, keepalive_s)
        self._stages = stages
        self._sent = 0  # samples sent, all told
        self._base = 0  # where the stage's sample clock starts on the stream's (moves when restarted)

    def _restarted(self) -> None:
        self._base = self._sent

    def feed(self, audio: np.ndarray, end: bool = False, recover: bool = True) -> Boundaries:
        found = self._send(lambda start, end: self._stages.vad(self.sequence_id, audio, start, end), end, recover)
        self._sent += len(audio)
        if not self._base:
            return found
        b = self._base
        return Boundaries(
            tuple(Utterance(u.start_sample + b, u.end_sample + b, u.speech_end_sample + b) for u in found.closed),
            Ongoing(found.ongoing.start_sample + b, found.ongoing.speech_end_sample + b)
            if found.ongoing is not None
            else None,
        )

    def touch(self) -> None:
        self.feed(np.zeros(0, np.float32))

    def abandon(self) -> None:
        """Ends the sequence without using what it still holds."""
        if self.started and not self.ended:
            try:
                self.feed(np.zeros(0, np.float32), end=True, recover=False)
            except Exception as exc:  # the stage may be gone (server shutdown)
                log.info("sequence %s: ending it in vad: %s", self.sequence_id, exc)


class EnhanceSequence(StageSequence):
    """`call(fn, *args)` runs a step that may ask the LLM: within the stream's LLM time limit,
    through the breaker. `bounded(fn, *args)` runs one that cannot (a touch, an end without
    flush): within the time limit only, so a paused LLM never lets the sequence idle out."""

    def __init__(
        self,
        stages,
        sequence_id: int,
        target: str,
        clock: Callable[[], float],
        keepalive_s: float,
        call: Callable,
        bounded: Callable,
    ):
        super().__init__("enhance", sequence_id, clock, keepalive_s)
        self._stages, self._target, self._call, self._bounded = stages, target, call, bounded
        self.source = ""  # set before the first step: the language of the stream's first transcript
        self.glossary = NO_GLOSSARY  # the session's: sent with the sequence's start
        self._now_s = 0.0  # the latest audio time the window has heard

    def _step(
        self,
        step: Piece | Tick,
        end: bool = False,
        check_complete: bool = True,
        flush: bool = True,
        llm: bool = True,
        recover: bool = True,
        translate_window: bool = True,
    ) -> list[Enhanced]:
        self._now_s = max(self._now_s, step.end_s if isinstance(step, Piece) else step.now_s)
        run = self._call if llm else self._bounded
        # only said when false: a stage set without the option (a test's) never sees it
        enhance = self._stages.enhance if translate_window else partial(self._stages.enhance, translate_window=False)
        return self._send(
            lambda start, end: run(
                enhance,
                self.sequence_id,
                step,
                self.source,
                self._target,
                start,
                end,
                check_complete,
                flush,
                self.glossary if start else NO_GLOSSARY,
            ),
            end,
            recover,
        )

    def add(self, piece: Piece, check_complete: bool = True, translate_window: bool = True) -> list[Enhanced]:
        return self._step(piece, check_complete=check_complete, translate_window=translate_window)

    def tick(self, now_s: float) -> list[Enhanced]:
        return self._step(Tick(now_s)) if self.started else []

    def touch(self) -> list[Enhanced]:
        """The window's latest time again: a tick it has heard already, so it asks no LLM
        (unless that tick's own call failed on the way)."""
        return self._step(Tick(self._now_s), llm=False)

    def finish(self) -> list[Enhanced]:
        """Ends the sequence; the window still open is translated and returned."""
        return self._step(Tick(self._now_s), end=True) if self.started else []

    def abandon(self) -> None:
        """Ends the sequence; the window still open is dropped untranslated."""
        if self.started and not self.ended:
            try:
                self._step(Tick(self._now_s), end=True, flush=False, llm=False, recover=False)
            except Exception as exc:
                log.info("sequence %s: ending it in enhance: %s", self.sequence_id, exc)
