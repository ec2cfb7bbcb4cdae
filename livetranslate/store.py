"""Durable per-session event log, and live fan-out to viewers.

Each session is `<data_dir>/<name>.jsonl`: a first line that names the session, then one event
per line, written and fsync'ed before the event is sent, so neither a crash of this process nor
of the machine loses an event already sent. `<name>.meta.json` holds the metadata, replaced
atomically and durably; it is rebuilt from the log when missing or corrupt. Lines are split on
"\\n" only (JSON escapes it inside strings; U+2028 and the like are text), and a torn last line
is skipped instead of failing. One server owns a data directory at a time (`.lock`).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from livetranslate.protocol import Event, EventKind

DATA_DIR_ENV = "LIVETRANSLATE_DATA_DIR"
LOCK_FILE = ".lock"
LOG_SUFFIX, META_SUFFIX = ".jsonl", ".meta.json"
HEADER_KEY = "session"  # a log's first line: {"session": name, languages, started_at}, not an event


class StoreError(Exception):
    """The store cannot do what was asked (disk full, data directory in use); the message says
    why, naming the session or directory."""


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return Path(env) if env else base / "livetranslate" / "sessions"


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(session: str) -> str:
    """A file name for a session name (which may hold any printable characters): the name
    itself when it is a plain slug, else its slug, "~" and a hash of the name. No plain slug
    holds "~", so distinct names give distinct files."""
    slug = _SLUG.sub("_", session).strip("._")[:80] or "session"
    if slug == session:
        return slug
    return f"{slug}~{hashlib.sha256(session.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def _legacy_name(session: str) -> str:
    """The file name stores before safe_name's hash used: their sessions are still found."""
    slug = _SLUG.sub("_", session).strip("._")[:80] or "session"
    crc = zlib.crc32(session.encode("utf-8", "surrogatepass"))
    return f"{slug}-{crc % 10**8:08d}" if slug != session else slug


@dataclass
class SessionInfo:
    name: str
    source_language: str = ""
    target_language: str = ""
    started_at: float = 0.0  # unix time
    ended_at: float | None = None
    state: str = "live"  # live | ended
    counts: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0  # log and metadata on disk, as last listed (not stored)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def last_active(self) -> float:
        return self.ended_at if self.ended_at is not None else self.started_at


_INFO_FIELDS = {f.name for f in fields(SessionInfo)} - {"size_bytes"}


def _event_from_dict(d: dict) -> Event:
    d = dict(d)
    d["kind"] = EventKind(d["kind"])
    return Event(**{k: v for k, v in d.items() if k in Event.__dataclass_fields__})


def _line(record: dict) -> bytes:
    """One log line. Text that is not valid UTF-8 (a lone surrogate) is kept as JSON escapes."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode("ascii")


def _read_regular(path: Path) -> bytes | None:
    """A regular file's bytes; None when it is missing or not a regular file (reading a device
    or a pipe would never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


def _parse_log(data: bytes) -> tuple[dict, list[Event]]:
    """(header, events) of a log. Lines end at b"\\n" only; a torn or corrupt line is skipped."""
    header, events = {}, []
    for raw in data.split(b"\n"):
        try:
            record = json.loads(raw.decode("utf-8"))
            if "kind" not in record and isinstance(record.get(HEADER_KEY), str):
                header = header or record
                continue
            events.append(_event_from_dict(record))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return header, events


def _load_info(meta: Path) -> SessionInfo | None:
    data = _read_regular(meta)
    try:
        d = json.loads(data)
        info = SessionInfo(**{k: v for k, v in d.items() if k in _INFO_FIELDS})
    except (TypeError, ValueError, AttributeError):
        return None  # missing or corrupt: rebuilt from the log
    return info if isinstance(info.name, str) and info.state in ("live", "ended") else None


def _info_from_log(name: str, header: dict, events: list[Event], mtime: float) -> SessionInfo:
    """Metadata rebuilt from a log: languages from its header, else its first events; ended if
    its last event is an `end`."""
    def first_language(*kinds):
        return next((e.language for e in events if e.kind in kinds and isinstance(e.language, str)
                     and e.language), "")

    source = header.get("source_language") or first_language(EventKind.TRANSCRIPT)
    target = header.get("target_language") or first_language(EventKind.TRANSLATION, EventKind.ENHANCED)
    started = header.get("started_at")
    if not isinstance(started, (int, float)) or not math.isfinite(started):
        # no header: the last write less the audio it holds
        started = mtime - max((e.end_s for e in events if isinstance(e.end_s, (int, float))), default=0.0)
    ended = bool(events) and events[-1].kind == EventKind.END
    return SessionInfo(name, str(source), str(target), float(started), mtime if ended else None,
                       "ended" if ended else "live", dict(collections.Counter(e.kind.value for e in events)))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync_data = getattr(os, "fdatasync", os.fsync)  # an append's data and size, without its times


def _append_line(fd: int, line: bytes, sync: bool) -> None:
    """Appends one whole line, or nothing: a write that fails is cut back off (best effort; a
    torn line left behind is skipped on read)."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            _sync_data(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


_REASONS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file size limit reached", errno.EIO: "I/O error", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied"}


def _failed(exc: OSError, what: str) -> StoreError:
    reason = _REASONS.get(exc.errno, "write failed")
    return StoreError(f"{reason} while {what}: {exc.strerror or exc}")


class SessionStore:
    """The sessions of one data directory. The server constructs it with exclusive=True and
    then holds `<data_dir>/.lock`: a second server on the same directory fails at start.
    Readers (the sessions model, listings, exports) do not need the lock."""

    def __init__(self, data_dir: Path | None = None, hub: "Hub | None" = None, *, fsync: bool = True,
                 exclusive: bool = False):
        self.data_dir = Path(data_dir or default_data_dir())
        self.hub = hub
        self.fsync = fsync  # off only for benches and tests: a machine crash may then lose events
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # transcripts are private
        self._lock = threading.Lock()
        self._files: dict[str, int] = {}  # session -> its log, open for appending
        self._infos: dict[str, SessionInfo] = {}
        self._live: collections.Counter[str] = collections.Counter()  # open streams per session
        self._owner_fd = self._take_lock() if exclusive else None

    def _take_lock(self) -> int:
        """Holds `<data_dir>/.lock` (flock: the kernel lets go when this process ends, however
        it ends) and writes this process's id into it for the next one's message."""
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(f"data directory {self.data_dir} is in use by another livetranslate server "
                             f"(pid {holder})") from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock data directory {self.data_dir}: {exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    @contextlib.contextmanager
    def _owning(self, needed: bool):
        """The data directory's lock for a while, unless not needed or held already."""
        if not needed or self._owner_fd is not None:
            yield
            return
        fd = self._take_lock()
        try:
            yield
        finally:
            os.close(fd)

    def shutdown(self) -> None:
        """Closes every log and lets the data directory go."""
        with self._lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
            if self._owner_fd is not None:
                os.close(self._owner_fd)  # releases the flock
                self._owner_fd = None

    def _stem_paths(self, stem: str) -> tuple[Path, Path]:
        return self.data_dir / f"{stem}{LOG_SUFFIX}", self.data_dir / f"{stem}{META_SUFFIX}"

    def _paths(self, session: str) -> tuple[Path, Path]:
        stem = safe_name(session)
        paths = self._stem_paths(stem)
        if stem != session and not any(p.exists() for p in paths):
            legacy = self._stem_paths(_legacy_name(session))
            if any(p.exists() for p in legacy):
                return legacy
        return paths

    def _write_info(self, info: SessionInfo, meta: Path | None = None) -> None:
        """Replaces the metadata file atomically and durably: a temporary file, fsync'ed,
        renamed over it, and the directory fsync'ed."""
        meta = meta or self._paths(info.name)[1]
        data = _line({k: v for k, v in info.to_dict().items() if k in _INFO_FIELDS})
        try:
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=f".{meta.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    if self.fsync:
                        os.fsync(f.fileno())
                os.replace(tmp, meta)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if self.fsync:
                _fsync_dir(self.data_dir)
        except OSError as exc:
            raise _failed(exc, f"writing the metadata of session {info.name!r}") from exc

    def _rebuild(self, name: str | None, log: Path, meta: Path) -> SessionInfo | None:
        """Metadata from the log (None without one), written back when this store owns the
        directory (a reader must not race the server's own writes)."""
        data = _read_regular(log)
        if data is None:
            return None
        try:
            mtime = os.stat(log).st_mtime
        except OSError:
            return None
        header, events = _parse_log(data)
        if name is None:
            named = header.get(HEADER_KEY)
            name = named if isinstance(named, str) else log.name[: -len(LOG_SUFFIX)]
        info = _info_from_log(name, header, events, mtime)
        if self._owner_fd is not None:
            with contextlib.suppress(StoreError):
                self._write_info(info, meta)
        return info

    def open(self, session: str, source_language: str, target_language: str) -> SessionInfo:
        """Starts (or, for a reconnecting client, resumes) a session."""
        with self._lock:
            info = self.info(session) or SessionInfo(session, source_language, target_language, time.time())
            info.state, info.ended_at = "live", None
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
                header = {HEADER_KEY: session}
                if info is not None:
                    header.update(source_language=info.source_language, target_language=info.target_language,
                                  started_at=info.started_at)
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
            info.size_bytes = _size(log) + _size(meta)
            found.append((stem, info))
        return found

    def sessions(self) -> list[SessionInfo]:
        return sorted((info for _, info in self._scan()), key=lambda i: i.started_at, reverse=True)

    def prune(self, max_age_s: float | None = None, max_total_bytes: int | None = None,
              dry_run: bool = False) -> list[SessionInfo]:
        """Removes ended sessions, never live ones: those last active more than `max_age_s`
        ago, then the oldest others until the data directory holds at most `max_total_bytes`.
        Returns what it removed (with dry_run: would remove), oldest first. A store without
        the directory's lock takes it for the while (StoreError if a server holds it)."""
        if max_age_s is not None and not max_age_s >= 0:
            raise ValueError(f"max_age_s must be seconds >= 0, got {max_age_s!r}")
        if max_total_bytes is not None and not max_total_bytes >= 0:
            raise ValueError(f"max_total_bytes must be >= 0, got {max_total_bytes!r}")
        with self._lock, self._owning(not dry_run):
            now = time.time()
            total = _dir_bytes(self.data_dir)
            ended = sorted(((stem, info) for stem, info in self._scan()
                            if info.state == "ended" and info.name not in self._infos and not self._live[info.name]),
                           key=lambda found: found[1].last_active)
            removed = []
            for stem, info in ended:
                too_old = max_age_s is not None and now - info.last_active > max_age_s
                too_big = max_total_bytes is not None and total > max_total_bytes
                if not (too_old or too_big):
                    break  # oldest first: none after this one is older or needed
                if not dry_run:
                    for path in self._stem_paths(stem):
                        try:
                            path.unlink(missing_ok=True)
                        except OSError as exc:
                            raise _failed(exc, f"removing {path}") from exc
                total -= info.size_bytes
                removed.append(info)
            if removed and not dry_run and self.fsync:
                _fsync_dir(self.data_dir)
            return removed


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _dir_bytes(path: Path) -> int:
    """Bytes in the data directory's files (the lock and temporary files too)."""
    total = 0
    for entry in os.scandir(path):
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
               "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_duration(text: str) -> float:
    """Seconds in "45s", "90m", "12h", "30d" or "2w"."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*", text.lower())
    if not m or m.group(2) not in _DURATION_UNITS:
        raise ValueError(f"{text!r} is not a duration: give a number and a unit (s, m, h, d, w), "
                         f"e.g. 30d, 12h or 90m")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_size(text: str) -> int:
    """Bytes in "500MB", "2GB" (powers of 1000), "1.5GiB" (powers of 1024) or "4096"."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: give a number and a unit (B, KB, MB, GB, TB, or KiB, "
                         f"MiB, GiB, TiB), e.g. 500MB or 2GB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def format_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def format_age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.1f}{unit}"
    return f"{max(seconds, 0):.0f}s"


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
        with self._lock:  # the last viewer leaving frees the session's entry
            viewers = self._viewers.get(session)
            if viewers is not None:
                viewers.discard(viewer)
                if not viewers:
                    del self._viewers[session]

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
