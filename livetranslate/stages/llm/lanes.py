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

A lane whose call makes no progress (no token, no prompt piece) for `stall_s` is stalled:
its instance, or the thread that sends its pieces, hangs. `check_stalls` (a watchdog thread,
`start_watchdog`) logs where every llm thread is, and the stalled lane's calls go to the
other instance from then on (the two lanes then take turns on it): the speakers keep their
translations, slower, instead of every later call timing out behind the hung one.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator

from livetranslate import deadline
from livetranslate.periodic import Every
from livetranslate.stages.llm import GenerationRequest, LlmEngine

LANES = ("urgent", "fast", "background")
DEFAULT_LANE = "background"
# no token and no prompt piece for this long: the lane's call hangs (a token takes well under
# a second, a prompt piece 0.1-0.2 s; a background call pauses for urgent work 2 s at most)
STALL_S = 20.0
log = logging.getLogger("livetranslate.stages.llm")


class LaneError(RuntimeError):
    pass


class Lanes:
    def __init__(
        self,
        background: LlmEngine,
        urgent: LlmEngine | None = None,
        fast: LlmEngine | None = None,
        *,
        max_pause_s: float = 2.0,
        max_waiting: int = 32,
        clock: Callable[[], float] = time.monotonic,
        stall_s: float = STALL_S,
    ):
        self._engines = {"background": background, "urgent": urgent or background, "fast": fast}
        self.max_pause_s, self.max_waiting, self.stall_s = max_pause_s, max_waiting, stall_s
        self._clock = clock
        # one turn per engine instance: `urgent` takes turns with `background` when it has no
        # instance of its own (a call then never pauses for it), `fast` with `urgent` when both
        # have one (two urgent computations at once would halve each other's speed)
        background_turn = threading.Lock()
        urgent_turn = background_turn if urgent is None else threading.Lock()
        fast_turn = threading.Lock() if urgent is None else urgent_turn
        self._turns = {"background": background_turn, "urgent": urgent_turn, "fast": fast_turn}
        self._cond = threading.Condition()
        # urgent calls running or waiting, per turn: background work pauses for them (not for
        # those of a turn retired as stalled: they may never end)
        self._urgent: collections.Counter[threading.Lock] = collections.Counter()
        self._retired: set[threading.Lock] = set()
        self._waiting = 0
        self.paused_s = 0.0  # background time spent paused for urgent work, all told
        # lane -> when its call under way last made progress (a token, a prompt piece)
        self._progress: dict[str, float] = {}
        self.stalled: list[str] = []  # lanes given up on, in order

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
            raise deadline.DeadlineExceeded(
                f"an LLM call waiting for its turn in the {lane} lane: dropped, its caller stopped waiting"
            )
        try:
            yield
        finally:
            turn.release()

    @contextlib.contextmanager
    def _urgent_turn(self, lane: str):
        with self._cond:
            turn = self._turns[lane]
            pausing = turn is not self._turns["background"]  # background work pauses for it
            if pausing:
                self._urgent[turn] += 1
        try:
            with self._turn(turn, lane), self._working(lane):
                yield
        finally:
            if pausing:
                with self._cond:
                    self._urgent[turn] -= 1
                    if not self._urgent[turn]:
                        del self._urgent[turn]
                    self._cond.notify_all()

    def _urgent_running(self) -> bool:
        """(Under `_cond`.) Whether urgent work runs or waits that background work pauses for."""
        return any(turn not in self._retired for turn in self._urgent)

    @contextlib.contextmanager
    def _working(self, lane: str):
        """The lane's call under way: its progress is watched (check_stalls)."""
        with self._cond:
            self._progress[lane] = self._clock()
        try:
            yield
        finally:
            with self._cond:
                self._progress.pop(lane, None)

    def _advanced(self, lane: str) -> None:
        with self._cond:
            if lane in self._progress:
                self._progress[lane] = self._clock()

    def _yield_to_urgent(self, max_s: float | None = None) -> None:
        """Background work waits here between tokens while urgent work runs (bounded by
        `max_s`, else `max_pause_s`), and stops once its caller stopped waiting."""
        deadline.check("a background LLM call")
        with self._cond:
            if not self._urgent_running():
                return
            started = self._clock()
            left = deadline.remaining()
            most = self.max_pause_s if max_s is None else max_s
            pause = most if left is None else max(0.0, min(most, left))
            self._cond.wait_for(lambda: not self._urgent_running(), timeout=pause)
            self.paused_s += self._clock() - started
            if "background" in self._progress:  # paused is not stalled
                self._progress["background"] = self._clock()
        deadline.check("a background LLM call")

    def _prompt_pauses(self) -> Callable[[], None]:
        """What a background prompt calls between its pieces: it pauses for urgent work, for
        `max_pause_s` in all (under constant urgent load a window still gets its prompt
        evaluated, as between tokens it still advances), and stops once its caller gave up."""
        left = [self.max_pause_s]

        def between() -> None:
            self._advanced("background")
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
                turn, engine = self._route("background")
                with self._turn(turn, lane), self._working(lane):
                    self._yield_to_urgent()
                    # its prompt too pauses for urgent work (a window's prompt is seconds of CPU)
                    engine.prefill(request.prompt, self._prompt_pauses())
                    for piece in engine.generate(request):
                        self._advanced(lane)
                        yield piece
                        self._yield_to_urgent()
                return
            with self._urgent_turn(lane):
                for piece in self._route(lane)[1].generate(request):
                    self._advanced(lane)
                    yield piece
                    deadline.check(f"an LLM call in the {lane} lane")

    def yes_probability(self, prompt: str) -> float:
        """A completeness check: background work (one prompt evaluation, no tokens)."""
        turn, engine = self._route("background")
        with self._admitted(), self._turn(turn, "background"), self._working("background"):
            self._yield_to_urgent()
            engine.prefill(prompt, self._prompt_pauses())
            return engine.yes_probability(prompt)

    def _route(self, lane: str) -> tuple[threading.Lock, LlmEngine]:
        with self._cond:
            engine = self._engines[lane]
            if engine is None:  # "fast", retired as stalled (_reroute) after lane_of chose it for this call
                raise LaneError(f"the {lane} lane was given up on as stalled while this call waited for its turn")
            return self._turns[lane], engine

    # --- stalls ---------------------------------------------------------------------------
    def check_stalls(self) -> list[str]:
        """Lanes stalled since the last check (logged, with where each llm thread is). A
        stalled lane's later calls go to the other instance, when there is one."""
        now = self._clock()
        with self._cond:
            stalled = [
                lane for lane, at in self._progress.items() if now - at >= self.stall_s and lane not in self.stalled
            ]
            for lane in stalled:
                self.stalled.append(lane)
                moved = self._reroute(lane)
                log.error(
                    "llm: the %s lane made no progress for %.0f s (a hung call); %s. Where the llm threads are:\n%s",
                    lane,
                    now - self._progress[lane],
                    f"its calls go to the {moved} instance from now on"
                    if moved
                    else "no other instance to send its calls to",
                    thread_stacks("llm-"),
                )
        return stalled

    def _reroute(self, lane: str) -> str:
        """(Under `_cond`.) The stalled lane's calls go to the other instance from now on;
        returns which, or "" when there is none."""
        if lane == "fast":
            self._engines["fast"] = None  # lane_of sends its calls to the urgent lane
            return "urgent"
        own, other = ("urgent", "background") if lane == "urgent" else ("background", "urgent")
        if self._turns[own] is self._turns[other] or other in self.stalled:
            return ""
        stuck = self._turns[own]
        self._retired.add(stuck)
        self._engines[own], self._turns[own] = self._engines[other], self._turns[other]
        if self._turns["fast"] is stuck:  # the small model had shared the stalled turn
            self._turns["fast"] = threading.Lock()
        self._cond.notify_all()  # background work paused for the stalled call goes on
        return other

    def start_watchdog(self, every_s: float = 5.0) -> Every:
        return Every(self.check_stalls, every_s, "llm-watchdog", "the llm's stall check")


def thread_stacks(prefix: str = "", limit: int = 8) -> str:
    """Where each thread whose name starts with `prefix` is: its innermost `limit` frames."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines = []
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, str(ident))
        if not name.startswith(prefix):
            continue
        frames = traceback.extract_stack(frame)[-limit:]
        lines.append(
            f"llm stall: {name}: "
            + " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in reversed(frames))
        )
    return "\n".join(sorted(lines)) or "llm stall: (no such thread)"
