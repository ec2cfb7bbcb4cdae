"""The sequences a stream holds open in the sequence-stateful stages, `vad` and `enhance`.

Triton drops a sequence that idles past its model's `max_sequence_idle_microseconds` without
telling anyone, and the next request of that sequence then fails. A stream's sequence is
therefore started by its first request, touched by the stream whenever it has been quiet for
`keepalive_s` (well under every idle timeout), and ended explicitly when the stream closes,
on every path. Each sequence is used by one worker thread only, under an id of its stream's
own (never the client's sequence id: a client may START a new stream under the id of one
still ending).
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from livetranslate.enhance import Enhanced, Piece, Tick
from livetranslate.vad import Boundaries

log = logging.getLogger("livetranslate.pipeline")


class StageSequence:
    def __init__(self, sequence_id: int, clock: Callable[[], float], keepalive_s: float):
        self.sequence_id, self._clock, self.keepalive_s = sequence_id, clock, keepalive_s
        self.started = self.ended = False
        self._used = clock()

    def _flags(self, end: bool) -> tuple[bool, bool]:
        """(start, end) for the next request; marks the sequence used now."""
        start, self.started = not self.started, True
        self.ended = self.ended or end
        self._used = self._clock()
        return start, end

    @property
    def due(self) -> bool:
        """Open and quiet for `keepalive_s`: touch it now."""
        return self.started and not self.ended and self._clock() - self._used >= self.keepalive_s


class VadSequence(StageSequence):
    def __init__(self, stages, sequence_id: int, clock: Callable[[], float], keepalive_s: float):
        super().__init__(sequence_id, clock, keepalive_s)
        self._stages = stages

    def feed(self, audio: np.ndarray, end: bool = False) -> Boundaries:
        start, end = self._flags(end)
        return self._stages.vad(self.sequence_id, audio, start=start, end=end)

    def touch(self) -> None:
        self.feed(np.zeros(0, np.float32))

    def abandon(self) -> None:
        """Ends the sequence without using what it still holds."""
        if self.started and not self.ended:
            try:
                self.feed(np.zeros(0, np.float32), end=True)
            except Exception as exc:  # the stage may be gone (server shutdown)
                log.info("sequence %s: ending its vad sequence: %s", self.sequence_id, exc)


class EnhanceSequence(StageSequence):
    """`call(fn, *args)` runs a step that may ask the LLM: within the stream's LLM time limit,
    through the breaker. `bounded(fn, *args)` runs one that cannot (a touch, an end without
    flush): within the time limit only, so a paused LLM never lets the sequence idle out."""

    def __init__(self, stages, sequence_id: int, target: str, clock: Callable[[], float], keepalive_s: float,
                 call: Callable, bounded: Callable):
        super().__init__(sequence_id, clock, keepalive_s)
        self._stages, self._target, self._call, self._bounded = stages, target, call, bounded
        self.source = ""  # set before the first step: the language of the stream's first transcript
        self._now_s = 0.0  # the latest audio time the window has heard

    def _step(self, step: Piece | Tick, end: bool = False, check_complete: bool = True,
              flush: bool = True, llm: bool = True) -> list[Enhanced]:
        self._now_s = max(self._now_s, step.end_s if isinstance(step, Piece) else step.now_s)
        start, end = self._flags(end)
        return (self._call if llm else self._bounded)(
            self._stages.enhance, self.sequence_id, step, self.source, self._target, start, end, check_complete, flush)

    def add(self, piece: Piece, check_complete: bool = True) -> list[Enhanced]:
        return self._step(piece, check_complete=check_complete)

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
                self._step(Tick(self._now_s), end=True, flush=False, llm=False)
            except Exception as exc:
                log.info("sequence %s: ending its enhance sequence: %s", self.sequence_id, exc)
