"""The idle CPU priority partials run at: every thread of the process, and threads it
starts later, run at SCHED_IDLE. Checked in a child process (the test's own stays normal)."""

import subprocess
import sys
import textwrap

import pytest

from livetranslate.stages import priority

CHILD = textwrap.dedent("""
    import os, threading, time
    from livetranslate.stages import priority
    stop = threading.Event()
    before = threading.Thread(target=stop.wait); before.start()
    assert not priority.is_idle()
    how = priority.set_idle()
    after = threading.Thread(target=stop.wait); after.start()  # inherits it
    time.sleep(0.05)
    assert len(priority.threads()) >= 3
    assert priority.is_idle(), how
    stop.set()
    print(how)
""")


def test_set_idle_covers_every_thread_and_later_ones():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("SCHED_IDLE", "nice 19")
    assert not priority.is_idle()  # this process untouched


def test_unknown_priority_is_refused():
    with pytest.raises(ValueError, match="cpu priority"):
        priority.apply("realtime")
    assert priority.apply("normal") == "normal"
