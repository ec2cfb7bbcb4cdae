"""The sessions of one data directory: started, appended to (each event synced to disk
before it is sent, and offered to the session's viewers), closed, listed and read."""

from __future__ import annotations

import collections
import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

from livetranslate.protocol import Event, EventKind
from livetranslate.store import retention
from livetranslate.store.directory import DataDirectory
from livetranslate.store.fanout import Hub, Viewer
from livetranslate.store.files import (
    HEADER_KEY,
    LOG_SUFFIX,
    META_SUFFIX,
    SessionInfo,
    StoreError,
    _append_line,
    _failed,
    _fsync_dir,
    _line,
    _load_info,
    _parse_log,
    _read_regular,
    _size,
)
from livetranslate.store.interface import Store
from livetranslate.store.watching import ViewerCountFile, read_viewer_counts


class SessionStore(DataDirectory):
    """The sessions of one data directory. The server constructs it with exclusive=True and
    then holds `<data_dir>/.lock`: a second server on the same directory fails at start.
    Readers (the sessions model, listings, exports) do not need the lock."""

    shared = False  # one server at a time (its lock)
    keeps = True

    def __init__(
        self, data_dir: Path | None = None, hub: Hub | None = None, *, fsync: bool = True, exclusive: bool = False
    ):
        self.hub = hub
        self._lock = threading.Lock()
        self._files: dict[str, int] = {}  # session -> its log, open for appending
        self._infos: dict[str, SessionInfo] = {}
        self._live: collections.Counter[str] = collections.Counter()  # open streams per session
        super().__init__(data_dir, fsync=fsync, exclusive=exclusive)
        # this process's viewers, counted where the `sessions` model (another process) reads them
        self._watching = ViewerCountFile(self.data_dir, hub.counts) if hub is not None else None

    def _hub(self) -> Hub:
        if self.hub is None:
            raise StoreError("this store was opened without a hub: it has no viewers")
        return self.hub

    def shutdown(self) -> None:
        """Closes every log and lets the data directory go."""
        with self._lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
            self._let_go()
        if self._watching is not None:
            self._watching.stop()

    def open(
        self, session: str, source_language: str, target_language: str, glossary: list[dict] | None = None
    ) -> SessionInfo:
        """Starts (or, for a reconnecting client, resumes) a session. `glossary`: the stream's
        (Glossary.to_list()), kept in the session's metadata."""
        with self._lock:
            info = self.info(session) or SessionInfo(session, source_language, target_language, time.time())
            info.state, info.ended_at = "live", None
            info.glossary = list(glossary or [])
            if session not in self._files:  # a new log's header keeps the name and languages
                try:
                    self._files[session] = self._open_log(session, info)
                except OSError as exc:
                    raise _failed(exc, f"starting session {session!r}") from exc
            self._write_info(info)  # before counting the stream: a failed open leaves nothing live
            self._infos[session] = info
            self._live[session] += 1
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
        They are marked ended (a reconnecting client makes them live again). A store without
        the directory's lock takes it for the while (StoreError if a server holds it)."""
        recovered = []
        with self._lock, self._owning(True):
            for stem, info in self._scan():
                if info.state == "live" and not self._live[info.name]:
                    log, meta = self._stem_paths(stem)
                    info.state = "ended"
                    info.ended_at = log.stat().st_mtime if log.exists() else time.time()
                    self._write_info(info, meta)
                    recovered.append(info.name)
        return recovered

    def _open_log(self, session: str, info: SessionInfo | None) -> int:
        """The session's log, open for appending. A new log starts with its header line; after
        a torn last line (a crash mid-write) the next line starts on a line of its own."""
        log, _ = self._paths(session)
        fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            st = os.fstat(fd)
            if not st.st_size:
                header: dict[str, Any] = {HEADER_KEY: session}
                if info is not None:
                    header.update(
                        source_language=info.source_language,
                        target_language=info.target_language,
                        started_at=info.started_at,
                        **({"glossary": info.glossary} if info.glossary else {}),
                    )
                _append_line(fd, _line(header), self.fsync)
                if self.fsync:
                    _fsync_dir(self.data_dir)  # the new file's name, too
            elif stat.S_ISREG(st.st_mode) and os.pread(fd, 1, st.st_size - 1) != b"\n":
                _append_line(fd, b"\n", sync=False)
        except OSError:
            os.close(fd)
            raise
        return fd

    def append(self, session: str, event: Event) -> None:
        """Stores one event (written and, with fsync, on disk) before viewers get it. When the
        disk refuses it (full, over quota, failing) this raises StoreError: the event is not
        stored, the log stays readable, and the store goes on serving other sessions."""
        line = _line(event.to_dict())
        with self._lock:
            fd = self._files.get(session)
            try:
                if fd is None:
                    fd = self._files[session] = self._open_log(session, self._infos.get(session))
                _append_line(fd, line, self.fsync)
            except OSError as exc:
                fd = self._files.pop(session, None)
                if fd is not None:  # reopened, and its end checked, by the next append
                    os.close(fd)
                raise _failed(exc, f"storing session {session!r}") from exc
            info = self._infos.get(session)
            if info is not None:
                info.counts[event.kind.value] = info.counts.get(event.kind.value, 0) + 1
                if event.kind == EventKind.TRANSLATION and event.language and event.language not in info.languages:
                    info.languages.append(event.language)
            if self.hub is not None:  # under the lock: a viewer attaching sees each event once
                self.hub.publish(session, event)

    def annotate(self, session: str, event: Event) -> None:
        """Stores an event that no speaker's stream makes (a correction, a summary, a late
        viewer's translation), live session or ended; its viewers get it. StoreError as `append`."""
        if self.info(session) is None:
            raise StoreError(f"no session named {session!r}")
        self.append(session, event)
        with self._lock:
            if self._live[session]:
                return
            fd = self._files.pop(session, None)  # an ended session keeps no log open
            if fd is not None:
                os.close(fd)
            info = self.info(session)
            if info is not None:
                info.counts[event.kind.value] = info.counts.get(event.kind.value, 0) + 1
                if event.kind == EventKind.TRANSLATION and event.language and event.language not in info.languages:
                    info.languages.append(event.language)
                self._write_info(info)

    def attach(self, session: str, viewer: Viewer) -> list[Event]:
        """Subscribes a viewer; returns the history up to that moment, atomically."""
        with self._lock:
            history = self.events(session)
            self._hub().subscribe(session, viewer)
        if self._watching is not None:
            self._watching.changed()
        return history

    def detach(self, session: str, viewer: Viewer) -> None:
        self._hub().unsubscribe(session, viewer)
        if self._watching is not None:
            self._watching.changed()

    def ended_with(self, session: str) -> Event | None:
        """The session's last `end` when it has ended, else None."""
        info = self.info(session)
        if info is None or info.state != "ended":
            return None
        return next((e for e in reversed(self.events(session)) if e.kind == EventKind.END), Event(EventKind.END))

    def close(self, session: str) -> bool:
        """One stream of the session ended; the last one ends the session (True)."""
        with self._lock:
            if self._live[session] > 1:
                self._live[session] -= 1
                return False
            self._live.pop(session, None)
            fd = self._files.pop(session, None)
            if fd is not None:
                os.close(fd)
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
        log, meta = self._paths(session)
        return _load_info(meta) or self._rebuild(session, log, meta)

    def events(self, session: str) -> list[Event]:
        data = _read_regular(self._paths(session)[0])
        return _parse_log(data)[1] if data else []

    def _scan(self) -> list[tuple[str, SessionInfo]]:
        """(file stem, metadata with its size) of every stored session."""
        stems = set()
        for entry in os.scandir(self.data_dir):
            for suffix in (LOG_SUFFIX, META_SUFFIX):
                # hidden files are the lock and temporary files; no stem starts with "."
                if entry.name.endswith(suffix) and not entry.name.startswith("."):
                    stems.add(entry.name[: -len(suffix)])
        found = []
        for stem in sorted(stems):
            log, meta = self._stem_paths(stem)
            info = _load_info(meta) or self._rebuild(None, log, meta)
            if info is None:
                continue
            if info.name in self._infos:  # a live session of this process has fresher counts
                info.counts = dict(self._infos[info.name].counts)
                info.languages = list(self._infos[info.name].languages)
            info.size_bytes = _size(log) + _size(meta)
            found.append((stem, info))
        return found

    def sessions(self) -> list[SessionInfo]:
        """Newest first; each live one with its viewers now, over every process serving them."""
        watching = read_viewer_counts(self.data_dir)
        infos = [info for _, info in self._scan()]
        for info in infos:
            info.viewers = watching.get(info.name, 0) if info.state == "live" else 0
        return sorted(infos, key=lambda i: i.started_at, reverse=True)

    def prune(
        self, max_age_s: float | None = None, max_total_bytes: int | None = None, dry_run: bool = False
    ) -> list[SessionInfo]:
        """Removes ended sessions, never live ones (retention.prune)."""
        return retention.prune(self, max_age_s, max_total_bytes, dry_run)


def session_report(store: Store, action: str, session: str = "") -> str:
    """The `sessions` model's answer, as JSON."""
    if action == "list":
        return json.dumps([info.to_dict() for info in store.sessions()], ensure_ascii=False)
    if action == "get":
        info = store.info(session)
        if info is None:
            raise ValueError(f"no session named {session!r}")
        described = {k: v for k, v in info.to_dict().items() if k != "viewers"}  # counted for `list` only
        return json.dumps(
            {"info": described, "events": [e.to_dict() for e in store.events(session)]}, ensure_ascii=False
        )
    raise ValueError(f"unknown ACTION {action!r}: use list or get")
