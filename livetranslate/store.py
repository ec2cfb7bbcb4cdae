"""Durable per-session event log, and live fan-out to viewers.

Each session is `<data_dir>/<name>.jsonl` (one event per line, appended and flushed before
the event is sent, so a crash loses nothing already sent) plus `<name>.meta.json`
(metadata, replaced atomically). Reading skips a torn last line instead of failing.
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from livetranslate.protocol import Event, EventKind

DATA_DIR_ENV = "LIVETRANSLATE_DATA_DIR"


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return Path(env) if env else base / "livetranslate" / "sessions"


def safe_name(session: str) -> str:
    """A file name for a session name (which may hold any printable characters)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", session).strip("._")[:80] or "session"
    return f"{slug}-{abs(hash_name(session)) % 10**8:08d}" if slug != session else slug


def hash_name(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode("utf-8"))


@dataclass
class SessionInfo:
    name: str
    source_language: str = ""
    target_language: str = ""
    started_at: float = 0.0  # unix time
    ended_at: float | None = None
    state: str = "live"  # live | ended
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _event_from_dict(d: dict) -> Event:
    d = dict(d)
    d["kind"] = EventKind(d["kind"])
    return Event(**{k: v for k, v in d.items() if k in Event.__dataclass_fields__})


class SessionStore:
    def __init__(self, data_dir: Path | None = None, hub: "Hub | None" = None):
        self.data_dir = Path(data_dir or default_data_dir())
        self.hub = hub
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files: dict[str, object] = {}
        self._infos: dict[str, SessionInfo] = {}
        self._live: collections.Counter[str] = collections.Counter()  # open streams per session

    def _paths(self, session: str) -> tuple[Path, Path]:
        stem = safe_name(session)
        return self.data_dir / f"{stem}.jsonl", self.data_dir / f"{stem}.meta.json"

    def _write_info(self, info: SessionInfo) -> None:
        _, meta = self._paths(info.name)
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps(info.to_dict(), ensure_ascii=False))
        os.replace(tmp, meta)

    def open(self, session: str, source_language: str, target_language: str) -> SessionInfo:
        """Starts (or, for a reconnecting client, resumes) a session."""
        with self._lock:
            info = self.info(session) or SessionInfo(session, source_language, target_language, time.time())
            info.state, info.ended_at = "live", None
            self._infos[session] = info
            self._live[session] += 1
            self._write_info(info)
            return info

    def resume_point(self, session: str) -> tuple[int, float]:
        """(next segment id, end of the last event in seconds) of a stored session: a new
        stream under an old name goes on from there instead of reusing segment ids."""
        events = self.events(session)
        ids = [e.segment_id for e in events if e.kind == EventKind.TRANSCRIPT]
        return (max(ids) + 1 if ids else 0), max((e.end_s for e in events), default=0.0)

    def live_streams(self, session: str) -> int:
        with self._lock:
            return self._live[session]

    def recover(self) -> list[str]:
        """At server start: sessions a crashed server left `live` have no stream any more.
        They are marked ended (a reconnecting client makes them live again)."""
        recovered = []
        for info in self.sessions():
            if info.state == "live" and not self._live[info.name]:
                log, _ = self._paths(info.name)
                info.state = "ended"
                info.ended_at = log.stat().st_mtime if log.exists() else time.time()
                with self._lock:
                    self._write_info(info)
                recovered.append(info.name)
        return recovered

    def append(self, session: str, event: Event) -> None:
        with self._lock:
            log, _ = self._paths(session)
            f = self._files.get(session)
            if f is None:
                torn = False
                if log.exists() and log.stat().st_size:
                    with open(log, "rb") as tail:
                        tail.seek(-1, os.SEEK_END)
                        torn = tail.read(1) != b"\n"
                f = self._files[session] = open(log, "a", encoding="utf-8")
                if torn:  # a torn last line from a crash: start a fresh line after it
                    f.write("\n")
            f.write(event.to_json() + "\n")
            f.flush()  # in the kernel before it is sent: survives a crash of this process
            info = self._infos.get(session)
            if info is not None:
                info.counts[event.kind.value] = info.counts.get(event.kind.value, 0) + 1
            if self.hub is not None:  # under the lock: a viewer attaching sees each event once
                self.hub.publish(session, event)

    def attach(self, session: str, viewer: "Viewer") -> list[Event]:
        """Subscribes a viewer; returns the history up to that moment, atomically."""
        with self._lock:
            history = self.events(session)
            self.hub.subscribe(session, viewer)
            return history

    def close(self, session: str) -> bool:
        """One stream of the session ended; the last one ends the session (True)."""
        with self._lock:
            if self._live[session] > 1:
                self._live[session] -= 1
                return False
            self._live.pop(session, None)
            f = self._files.pop(session, None)
            if f is not None:
                f.close()
            info = self._infos.pop(session, None) or self.info(session)
            if info is not None:
                info.state, info.ended_at = "ended", time.time()
                self._write_info(info)
            return True

    def sync_info(self, session: str) -> None:
        """Writes the running counts (called now and then, not per event)."""
        with self._lock:
            info = self._infos.get(session)
            if info is not None:
                self._write_info(info)

    def info(self, session: str) -> SessionInfo | None:
        if session in self._infos:
            return self._infos[session]
        _, meta = self._paths(session)
        try:
            return SessionInfo(**json.loads(meta.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def events(self, session: str) -> list[Event]:
        log, _ = self._paths(session)
        events = []
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        for line in lines:
            try:
                events.append(_event_from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or corrupt line: skip it, keep the rest
        return events

    def sessions(self) -> list[SessionInfo]:
        infos = []
        for meta in self.data_dir.glob("*.meta.json"):
            try:
                infos.append(SessionInfo(**json.loads(meta.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        for info in infos:  # a live session of this process has fresher counts
            if info.name in self._infos:
                info.counts = dict(self._infos[info.name].counts)
        return sorted(infos, key=lambda i: i.started_at, reverse=True)


class Viewer:
    """One subscriber's bounded queue. A viewer that falls `max_events` behind is dropped
    (told so), never the speaker."""

    def __init__(self, max_events: int = 500):
        self.queue: collections.deque[Event] = collections.deque()
        self.max_events = max_events
        self.overflowed = False
        self.cond = threading.Condition()

    def offer(self, event: Event) -> None:
        with self.cond:
            if len(self.queue) >= self.max_events:
                self.overflowed = True
            else:
                self.queue.append(event)
            self.cond.notify()

    def take(self, timeout: float) -> Event | None:
        with self.cond:
            self.cond.wait_for(lambda: self.queue or self.overflowed, timeout)
            return self.queue.popleft() if self.queue else None


class Hub:
    """Live events of each session to its viewers."""

    def __init__(self):
        self._viewers: dict[str, set[Viewer]] = collections.defaultdict(set)
        self._lock = threading.Lock()

    def subscribe(self, session: str, viewer: Viewer) -> None:
        with self._lock:
            self._viewers[session].add(viewer)

    def unsubscribe(self, session: str, viewer: Viewer) -> None:
        with self._lock:
            self._viewers[session].discard(viewer)

    def publish(self, session: str, event: Event) -> None:
        with self._lock:
            viewers = list(self._viewers.get(session, ()))
        for viewer in viewers:
            viewer.offer(event)

    def count(self, session: str) -> int:
        return len(self._viewers.get(session, ()))


def session_report(store: SessionStore, action: str, session: str = "") -> str:
    """The `sessions` model's answer, as JSON."""
    if action == "list":
        return json.dumps([info.to_dict() for info in store.sessions()], ensure_ascii=False)
    if action == "get":
        info = store.info(session)
        if info is None:
            raise ValueError(f"no session named {session!r}")
        return json.dumps({"info": info.to_dict(), "events": [e.to_dict() for e in store.events(session)]},
                          ensure_ascii=False)
    raise ValueError(f"unknown ACTION {action!r}: use list or get")
