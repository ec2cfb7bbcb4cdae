"""CPU priority of a whole process, for work that must only use spare CPU.

Interim results (partials) are decoded by their own Whisper instance (the `whisper_partial`
model, its own stub process) whose threads run at SCHED_IDLE: Linux then runs them only
when no normal thread wants the core, and a final decode arriving while a partial is under
way takes the CPU at once. The partial is not cancelled (Triton 2.51 cannot cancel a BLS
call), it is paused, and it resumes when the CPU is free again, so partials never delay
finals and are what waits under CPU pressure.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIORITIES = ("normal", "idle")


def threads(pid: int | str = "self") -> list[int]:
    """The thread ids of a process."""
    return sorted(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir())


def set_idle(pid: int | str = "self") -> str:
    """Moves every thread of the process (and so the threads they start later, which
    inherit it) to SCHED_IDLE, or to nice 19 where SCHED_IDLE is refused. Returns which."""
    done = "SCHED_IDLE"
    for tid in threads(pid):
        try:
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except (OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, tid, 19)
                done = "nice 19"
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return done


def is_idle(pid: int | str = "self") -> bool:
    """True when every thread of the process runs at idle priority."""

    def idle(tid: int) -> bool:
        try:
            return os.sched_getscheduler(tid) == os.SCHED_IDLE or os.getpriority(os.PRIO_PROCESS, tid) >= 19
        except ProcessLookupError:
            return True

    return all(idle(t) for t in threads(pid))


def apply(priority: str) -> str:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown cpu priority {priority!r}: use one of {', '.join(PRIORITIES)}")
    return set_idle() if priority == "idle" else "normal"
