"""What protects the server and its streams from each other: admission limits, the LLM
circuit breaker, and the Whisper load meter that keeps partials out of the finals' way."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from livetranslate.keys import Client
from livetranslate.pipeline.metrics import NO_METRICS, Metrics
from livetranslate.protocol import ProtocolError


@dataclass(frozen=True)
class Limits:
    """What one server takes; the next one gets a clear refusal at once, and what runs
    already is untouched."""

    max_streams: int = 8  # speaker streams, all sessions
    max_streams_per_session: int = 2  # a reconnecting client overlaps its old stream
    max_viewers: int = 200
    max_viewers_per_session: int = 100
    # languages besides the speaker's that one session's viewers may read at once: each costs
    # an LLM call per transcript
    max_viewer_languages: int = 4
    # audio a stream may have waiting to be processed; the client paces itself on the
    # replies (see client.py), so only a client that ignores them meets this
    max_queued_s: float = 60.0


class ServerFull(ProtocolError):
    def __init__(self, message: str, reason: str = "server_full"):
        super().__init__(message)
        self.reason = reason  # which limit: server_full, session_full or client_full


# where a new speaker needs a place when a limit is hit: ("server", ""), ("session", name) or
# ("client", name); Pipeline._make_room frees one there if a stream without audio holds it
Scope = tuple[str, str]


class Quota(Protocol):
    """Where each client's live streams and viewers are counted: in this server
    (`LocalQuota`), or in a store several servers share, so that a client's quota holds across
    them (livetranslate.store: `client_quota`)."""

    def take(self, kind: str, client: str, most: int) -> bool:
        """One more `kind` ("stream", "viewer") for `client`, if it has fewer than `most`."""

    def give_back(self, kind: str, client: str) -> None: ...

    def count(self, kind: str, client: str) -> int: ...


class LocalQuota:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def take(self, kind: str, client: str, most: int) -> bool:
        with self._lock:
            if self._counts[kind, client] >= most:
                return False
            self._counts[kind, client] += 1
            return True

    def give_back(self, kind: str, client: str) -> None:
        with self._lock:
            self._counts[kind, client] -= 1
            if self._counts[kind, client] <= 0:
                del self._counts[kind, client]

    def count(self, kind: str, client: str) -> int:
        with self._lock:
            return self._counts[kind, client]


class Admission:
    """Counts of live speaker streams and viewers, per session and in all, and per client
    when the server has named client keys (livetranslate.keys: each client's own limits, in
    `quota`), and of those refused (in `metrics`, by reason)."""

    def __init__(self, limits: Limits, metrics: Metrics = NO_METRICS, quota: Quota | None = None):
        self.limits, self.metrics = limits, metrics
        self.quota = quota or LocalQuota()
        self._lock = threading.Lock()
        self._counts: dict[str, collections.Counter[str]] = {
            "stream": collections.Counter(),
            "viewer": collections.Counter(),
        }

    def _limits(self, kind: str) -> tuple[int, int, str]:
        if kind == "stream":
            return self.limits.max_streams, self.limits.max_streams_per_session, "speaker stream"
        return self.limits.max_viewers, self.limits.max_viewers_per_session, "viewer"

    def _admit(self, kind: str, session: str, client: Client | None, make_room: Callable[[Scope], bool] | None) -> None:
        """Counts one more for `session` (and `client`), or raises ServerFull. When a limit is
        hit, `make_room(scope)` may free a place there first; True if it did."""
        counter = self._counts[kind]
        most, most_per_session, what = self._limits(kind)
        client_most = 0 if client is None else (client.max_streams if kind == "stream" else client.max_viewers)
        while True:
            full = None
            with self._lock:
                if sum(counter.values()) >= most:
                    full = "server_full"
                elif counter[session] >= most_per_session:
                    full = "session_full"
                else:
                    counter[session] += 1
            if full is None and (client is None or self.quota.take(kind, client.name, client_most)):
                return
            if full is None:  # the client's own quota: the place taken above goes back
                full = "client_full"
                self._leave(counter, session)
            scope = {
                "server_full": ("server", ""),
                "session_full": ("session", session),
                "client_full": ("client", client.name if client else ""),
            }[full]
            if make_room is None or client_most == 0 and full == "client_full" or not make_room(scope):
                break
            make_room = None  # one place made; if another took it meanwhile, this one is refused
        self.refused(kind, full)
        if full == "server_full":
            raise ServerFull(
                f"server full: {most} {what}s are live, the most this server takes; "
                f"try again later or use another server",
                full,
            )
        if full == "session_full":
            raise ServerFull(
                f"session {session!r} already has {most_per_session} {what}(s), the most one session takes", full
            )
        name = client.name if client else ""  # client_full comes with a client only
        if client_most == 0:
            raise ServerFull(f"client {name!r} may not open {what}s: its key allows none", full)
        raise ServerFull(
            f"client {name!r} already has {client_most} {what}(s) live, the most its key "
            f"allows; try again when one of them has ended",
            full,
        )

    def refused(self, kind: str, reason: str) -> None:
        """A speaker stream (`kind` "stream") or a viewer ("viewer") was turned away."""
        self.metrics.refused(kind, reason)

    def _leave(self, counter: collections.Counter, session: str) -> None:
        with self._lock:
            counter[session] -= 1
            if counter[session] <= 0:
                del counter[session]

    def admit_stream(
        self, session: str, make_room: Callable[[Scope], bool] | None = None, client: Client | None = None
    ) -> None:
        self._admit("stream", session, client, make_room)

    def stream_left(self, session: str, client: Client | None = None) -> None:
        self._leave(self._counts["stream"], session)
        if client is not None:
            self.quota.give_back("stream", client.name)

    def admit_viewer(self, session: str, client: Client | None = None) -> None:
        self._admit("viewer", session, client, None)

    def viewer_left(self, session: str, client: Client | None = None) -> None:
        self._leave(self._counts["viewer"], session)
        if client is not None:
            self.quota.give_back("viewer", client.name)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return sum(self._counts["stream"].values()), sum(self._counts["viewer"].values())


class WhisperLoad:
    """How busy Whisper is, over all streams of this pipeline: final decodes under way,
    and the share of the last `window_s` spent decoding. Partials run only when no final
    is under way and the share is low."""

    def __init__(self, window_s: float = 4.0):
        self.window_s = window_s
        self._finals = 0
        self._calls: collections.deque[tuple[float, float]] = collections.deque()  # (start, end)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def decoding(self, final: bool):
        started = time.monotonic()
        with self._lock:
            self._finals += final
        try:
            yield
        finally:
            with self._lock:
                self._finals -= final
                self._calls.append((started, time.monotonic()))

    @property
    def final_under_way(self) -> bool:
        with self._lock:
            return self._finals > 0

    def allows_partial(self, max_busy: float) -> bool:
        now = time.monotonic()
        horizon = now - self.window_s
        with self._lock:
            if self._finals:
                return False
            while self._calls and self._calls[0][1] < horizon:
                self._calls.popleft()
            busy = sum(end - max(start, horizon) for start, end in self._calls)
        return busy / self.window_s < max_busy


class LlmUnavailable(RuntimeError):
    pass


class LlmBreaker:
    """A circuit breaker for the LLM, shared by all streams: a hung LLM would otherwise cost
    every translation and enhance call its whole timeout, and the stream's translations
    would fall minutes behind. Timeouts in a row open it; any answer (an error too: the LLM
    is responding) closes it. While open, calls fail at once; when the pause is over they
    go through again, and one more timeout opens it again. (pybreaker holds its lock during
    the call, which would serialise every stream's LLM calls; `circuitbreaker` has no lock.)"""

    def __init__(self, timeouts_to_open: int, pause_s: float, clock: Callable[[], float] = time.monotonic):
        self.timeouts_to_open, self.pause_s, self._clock = timeouts_to_open, pause_s, clock
        self._timeouts = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            left = self._open_until - self._clock()
        if left > 0:
            raise LlmUnavailable(
                f"the LLM did not answer {self.timeouts_to_open} calls in a row in time; "
                f"calls paused, next try in {left:.0f} s"
            )

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open_until > self._clock()

    def answered(self) -> None:
        with self._lock:
            self._timeouts = 0

    def timed_out(self) -> None:
        with self._lock:
            self._timeouts += 1
            if self._timeouts >= self.timeouts_to_open:
                self._open_until = self._clock() + self.pause_s
                self._timeouts = self.timeouts_to_open - 1  # after the pause, one more opens it again


BASIC_MODELS = ("small", "large", "auto")


class TranslationLoad:
    """Which model makes the speaker's next translation (the llm's `fast` lane is the small
    one). `small`: always the small model, fast, and the large one is left to the enhanced
    translations; `large`: always the large one; `auto`: the large one unless the translation
    would arrive later than the budget after its speech. The estimate is the lag the transcript
    has already, plus one translation of its own, plus one for each translation of another
    stream ahead of it; while the small model stands in, every `probe_every`-th translation is
    the large one's again, so its estimate follows the load back down."""

    def __init__(
        self,
        budget_s: float,
        initial_s: float = 2.0,
        weight: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
        model: str = "auto",
        probe_every: int = 8,
    ):
        if model not in BASIC_MODELS:
            raise ValueError(f"unknown basic translation model {model!r}: use one of {', '.join(BASIC_MODELS)}")
        self.budget_s, self.weight, self._clock, self.model = budget_s, weight, clock, model
        self.probe_every = probe_every
        self._seconds = {False: initial_s, True: initial_s / 4}  # per translation: large, small model
        self._in_flight = 0
        self._small_in_row = 0
        self._lock = threading.Lock()

    def expected_s(self, lag_s: float, fast: bool = False) -> float:
        with self._lock:
            return lag_s + self._seconds[fast] * (self._in_flight + 1)

    def choose_fast(self, lag_s: float) -> bool:
        """Whether this translation should be made by the small model."""
        if self.model != "auto":
            return self.model == "small"
        late = self.budget_s > 0 and self.expected_s(lag_s) > self.budget_s
        with self._lock:
            self._small_in_row = self._small_in_row + 1 if late else 0
            if self._small_in_row >= self.probe_every:  # the large model again, to measure it
                self._small_in_row = 0
                return False
        return late

    @property
    def in_flight(self) -> int:
        """The speakers' translations under way now (background work waits for them)."""
        return self._in_flight

    @contextlib.contextmanager
    def translating(self, fast: bool):
        started = self._clock()
        with self._lock:
            self._in_flight += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            took = self._clock() - started
            with self._lock:
                self._in_flight -= 1
                if ok:  # a failure says nothing about how long a translation takes
                    self._seconds[fast] += self.weight * (took - self._seconds[fast])
