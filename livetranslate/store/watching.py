"""How many viewers follow each session now, over every server process, for `livetranslate
sessions`: the viewers are counted by the pipeline's store (its hub's subscribers), and the
list is made by the `sessions` model, another process, so the counts travel through the
store's own medium.

The local store: each process with viewers keeps `<data dir>/.viewers-<pid>-<id>.json`
({"at": unix time, "sessions": {name: viewers}}), rewritten when a viewer joins or leaves and
every HEARTBEAT_S while it has any, removed when its last viewer leaves or it shuts down. A
file not rewritten for EXPIRY_S (its process died) counts for nothing. (Redis:
store/redis_viewers.py.) Counting is best effort: a count that cannot be written never
fails a viewer."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from livetranslate.periodic import Every

log = logging.getLogger("livetranslate.store")

HEARTBEAT_S = 10.0
EXPIRY_S = 3 * HEARTBEAT_S
PREFIX, SUFFIX = ".viewers-", ".json"  # hidden: the session scan and pruning skip it


class ViewerCountFile:
    """This process's viewers of each session (`counts()`, the hub's), in a file of the data
    directory that readers in other processes add up (`read_viewer_counts`)."""

    def __init__(
        self,
        data_dir: Path,
        counts: Callable[[], dict[str, int]],
        *,
        heartbeat_s: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.time,
    ):
        self.data_dir, self._counts, self._clock = Path(data_dir), counts, clock
        self.heartbeat_s = heartbeat_s
        self.path = self.data_dir / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._lock = threading.Lock()  # one write at a time, each with the newest counts
        self._written = False
        self._beat: Every | None = None
        self._stopped = False

    def changed(self) -> None:
        """A viewer joined or left: the file says so now. The heartbeat (a thread) runs while
        there are viewers: a file it stops rewriting tells that its process died."""
        idle = None
        with self._lock:
            if self._stopped:
                return
            counts = self._counts()
            if counts:
                self._write(counts)
                if self._beat is None:
                    self._beat = Every(self.refresh, self.heartbeat_s, "viewer-counts", "writing viewer counts")
            else:
                if self._written:
                    self._remove()
                idle, self._beat = self._beat, None
        if idle is not None:  # outside the lock: its last refresh may be waiting for it
            idle.stop()

    def refresh(self) -> None:
        """The heartbeat: the counts again, with the time (while there are viewers)."""
        with self._lock:
            counts = self._counts()
            if counts and not self._stopped:
                self._write(counts)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            beat, self._beat = self._beat, None
            self._remove()
        if beat is not None:
            beat.stop()

    def _write(self, counts: dict[str, int]) -> None:
        data = json.dumps({"pid": os.getpid(), "at": self._clock(), "sessions": counts})
        try:
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".viewers.", suffix=".tmp")  # mode 600
            try:
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(data)
                os.replace(tmp, self.path)  # readers see the old counts or the new, never half
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._written = True
        except OSError as exc:
            log.warning("writing this server's viewer counts to %s failed: %s", self.data_dir, exc)

    def _remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._written = False


def read_viewer_counts(data_dir: Path, *, now: float | None = None, expiry_s: float = EXPIRY_S) -> dict[str, int]:
    """Viewers per session over every process that counts them in `data_dir`; the files of
    processes that stopped rewriting theirs (died) are left out."""
    now = time.time() if now is None else now
    total: dict[str, int] = {}
    try:
        entries = [e for e in os.scandir(data_dir) if e.name.startswith(PREFIX) and e.name.endswith(SUFFIX)]
    except OSError:
        return total
    for entry in entries:
        try:
            with open(entry.path, encoding="ascii") as f:
                record = json.load(f)
            at, sessions = float(record["at"]), record["sessions"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # gone meanwhile, or not one of ours
        if not math.isfinite(at) or now - at > expiry_s or not isinstance(sessions, dict):
            continue
        for name, count in sessions.items():
            if isinstance(name, str) and isinstance(count, int) and count > 0:
                total[name] = total.get(name, 0) + count
    return total
