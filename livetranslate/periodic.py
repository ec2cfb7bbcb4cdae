"""A task run every so often on a thread of its own: the metrics' sampling, the llm's stall
check, the closing of speaker streams that send no audio."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("livetranslate")


class Every:
    """Runs `task` every `every_s` on a daemon thread named `name`, until stopped; a run that
    fails is logged (as `what` failing) and the runs go on."""

    def __init__(self, task: Callable[[], object], every_s: float, name: str, what: str):
        self._task, self._every_s, self._what = task, every_s, what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._task()
            except Exception:  # one failed run must not end the runs
                log.exception("%s failed", self._what)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(self._every_s + 5)
