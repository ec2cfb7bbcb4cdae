"""Who the one CPU LLM works for first: the `llm` model's scheduling (cpu profile).

A speaker waits for the basic translation of what they just said; the enhanced window, the
completeness check and the viewers' extra languages can wait a little. With one llama.cpp
context every call waited for the one before it: a 3 s enhanced window held the next
sentence's translation back by 3 s. So the LLM has lanes:

- `urgent`: the speaker's basic translations. A llama.cpp instance of its own (llama.cpp
  repacks the weights for the CPU per instance: 1.8 GB more for Qwen 1.5B), so its prompt
  prefix (the system turn) stays in its cache from one call to the next.
- `fast`: urgent work for a stream whose translations fell behind, on a smaller model
  (when one is configured). It shares the urgent lane's turn.
- `background`: everything else. Between two generated tokens, and between two pieces of
  its prompt's evaluation, a background call pauses while urgent work runs, so urgent work
  gets the whole CPU within one token's (or piece's) time. It
  pauses at most `max_pause_s` at a time: under constant urgent load background work
  still advances (slowly) instead of timing out.

Calls of one lane run one at a time; the lanes run beside each other. A call whose caller
has stopped waiting (livetranslate.deadline) is dropped: while it waits for its turn, or
between two tokens. On a busy CPU the calls behind a timed-out one would otherwise wait for
work nobody reads and time out in turn.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator

from livetranslate import deadline
from livetranslate.llm import GenerationRequest, LlmEngine

LANES = ("urgent", "fast", "background")
DEFAULT_LANE = "background"


class LaneError(RuntimeError):
    pass


class Lanes:
    def __init__(self, background: LlmEngine, urgent: LlmEngine | None = None, fast: LlmEngine | None = None, *,
                 max_pause_s: float = 2.0, max_waiting: int = 32, clock: Callable[[], float] = time.monotonic):
        self._engines = {"background": background, "urgent": urgent or background, "fast": fast}
        self.max_pause_s, self.max_waiting = max_pause_s, max_waiting
        self._clock = clock
        # one turn per engine instance: `urgent` takes turns with `background` when it has no
        # instance of its own (a call then never pauses for it), `fast` with `urgent` when both
        # have one (two urgent computations at once would halve each other's speed)
        background_turn = threading.Lock()
        urgent_turn = background_turn if urgent is None else threading.Lock()
        fast_turn = threading.Lock() if urgent is None else urgent_turn
        self._turns = {"background": background_turn, "urgent": urgent_turn, "fast": fast_turn}
        self._cond = threading.Condition()
        self._urgent_running = 0
        self._waiting = 0
        self.paused_s = 0.0  # background time spent paused for urgent work, all told

    @property
    def has_fast(self) -> bool:
        return self._engines["fast"] is not None

    def lane_of(self, asked: str) -> str:
        lane = asked or DEFAULT_LANE
        if lane not in LANES:
            raise LaneError(f"unknown llm lane {lane!r}: use one of {', '.join(LANES)}")
        return "urgent" if lane == "fast" and not self.has_fast else lane

    # --- admission ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _admitted(self):
        with self._cond:
            if self._waiting >= self.max_waiting:
                raise LaneError(f"the LLM has {self._waiting} calls waiting already: try again later")
            self._waiting += 1
        try:
            yield
        finally:
            with self._cond:
                self._waiting -= 1

    @staticmethod
    @contextlib.contextmanager
    def _turn(turn: threading.Lock, lane: str):
        """The lane's turn, waited for no longer than the caller waits."""
        left = deadline.remaining()
        if not turn.acquire(timeout=-1 if left is None else max(0.0, left)):
            raise deadline.DeadlineExceeded(f"an LLM call waiting for its turn in the {lane} lane: dropped, "
                                            f"its caller stopped waiting")
        try:
            yield
        finally:
            turn.release()

    @contextlib.contextmanager
    def _urgent_turn(self, lane: str):
        turn = self._turns[lane]
        pausing = turn is not self._turns["background"]  # background work pauses for it
        if pausing:
            with self._cond:
                self._urgent_running += 1
        try:
            with self._turn(turn, lane):
                yield
        finally:
            if pausing:
                with self._cond:
                    self._urgent_running -= 1
                    self._cond.notify_all()

    def _yield_to_urgent(self, max_s: float | None = None) -> None:
        """Background work waits here between tokens while urgent work runs (bounded by
        `max_s`, else `max_pause_s`), and stops once its caller stopped waiting."""
        deadline.check("a background LLM call")
        with self._cond:
            if not self._urgent_running:
                return
            started = self._clock()
            left = deadline.remaining()
            most = self.max_pause_s if max_s is None else max_s
            pause = most if left is None else max(0.0, min(most, left))
            self._cond.wait_for(lambda: not self._urgent_running, timeout=pause)
            self.paused_s += self._clock() - started
        deadline.check("a background LLM call")

    def _prompt_pauses(self) -> Callable[[], None]:
        """What a background prompt calls between its pieces: it pauses for urgent work, for
        `max_pause_s` in all (under constant urgent load a window still gets its prompt
        evaluated, as between tokens it still advances), and stops once its caller gave up."""
        left = [self.max_pause_s]

        def between() -> None:
            if left[0] <= 0:
                deadline.check("a background LLM call")
                return
            started = self._clock()
            self._yield_to_urgent(max_s=left[0])
            left[0] -= self._clock() - started

        return between

    # --- work -----------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, lane: str = DEFAULT_LANE) -> Iterator[str]:
        """Pieces of text as they are generated, on the lane's engine."""
        lane = self.lane_of(lane)
        with self._admitted():
            if lane == "background":
                with self._turn(self._turns["background"], lane):
                    self._yield_to_urgent()
                    # its prompt too pauses for urgent work (a window's prompt is seconds of CPU)
                    self._engines["background"].prefill(request.prompt, self._prompt_pauses())
                    pieces = self._engines["background"].generate(request)
                    for piece in pieces:
                        yield piece
                        self._yield_to_urgent()
                return
            with self._urgent_turn(lane):
                for piece in self._engines[lane].generate(request):
                    yield piece
                    deadline.check(f"an LLM call in the {lane} lane")

    def yes_probability(self, prompt: str) -> float:
        """A completeness check: background work (one prompt evaluation, no tokens)."""
        with self._admitted(), self._turn(self._turns["background"], "background"):
            self._yield_to_urgent()
            self._engines["background"].prefill(prompt, self._prompt_pauses())
            return self._engines["background"].yes_probability(prompt)
