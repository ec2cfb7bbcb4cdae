"""How long the caller still waits, carried down the calls a call makes (as gRPC carries a
deadline): the pipeline gives each LLM call a time limit, and a BLS call passes what is left
of it on as the Triton request's timeout, so `translate`, `enhance`, `completeness` and
`llm` know it too. Work whose caller has stopped waiting is dropped instead of done: on a
busy CPU a call that timed out would otherwise still run, and the calls queued behind it
would time out in turn.

The deadline lives in a context variable: a `with within(s)` holds for the code it wraps on
that thread (a thread pool's task sets its own with `run_until`)."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("livetranslate_deadline", default=None)


class DeadlineExceeded(TimeoutError):
    pass


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """The code inside must be done within `seconds` (None: no new limit). A deadline set
    further out keeps the nearer one."""
    with until(None if seconds is None else time.monotonic() + seconds):
        yield


@contextlib.contextmanager
def until(deadline: float | None) -> Iterator[None]:
    """The code inside must be done by `deadline` (time.monotonic(); None: no new limit)."""
    if deadline is None:
        yield
        return
    current = _DEADLINE.get()
    token = _DEADLINE.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def run_until(deadline: float | None, fn: Callable[..., T], *args) -> T:
    """`fn(*args)` by `deadline` (time.monotonic()), for a task submitted to a thread pool: a
    task that starts after it is not run."""
    with until(deadline):
        check("a task that waited for a thread")
        return fn(*args)


def remaining() -> float | None:
    """Seconds left (negative once passed), or None without a deadline."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def check(what: str) -> None:
    """Raises DeadlineExceeded once the deadline has passed."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"{what}: dropped, its caller stopped waiting {-left:.1f} s ago")
