"""The files of the session store: names, the event log's lines, the metadata, and writes
that are whole or nothing."""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import json
import math
import os
import re
import stat
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from livetranslate import settings
from livetranslate.protocol import Event, EventKind

DATA_DIR_ENV = "LIVETRANSLATE_DATA_DIR"
LOCK_FILE = ".lock"
LOG_SUFFIX, META_SUFFIX = ".jsonl", ".meta.json"
HEADER_KEY = "session"  # a log's first line: {"session": name, languages, started_at}, not an event


class StoreError(Exception):
    """The store cannot do what was asked (disk full, data directory in use); the message says
    why, naming the session or directory."""


class SessionBusy(StoreError):
    """The session's speaker is served by another server (a store shared by several)."""


def default_data_dir() -> Path:
    return settings.get(DATA_DIR_ENV)


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
    # the languages of its stored translations: the speaker's target, then those viewers asked for
    languages: list[str] = field(default_factory=list)
    # the glossary of its latest stream: [{"term": ..., "translation": ...}] (livetranslate.glossary)
    glossary: list[dict] = field(default_factory=list)
    size_bytes: int = 0  # log and metadata on disk, as last listed (not stored)
    viewers: int = 0  # viewers following it now, on every server, as last listed (not stored)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def last_active(self) -> float:
        return self.ended_at if self.ended_at is not None else self.started_at


_INFO_FIELDS = {f.name for f in fields(SessionInfo)} - {"size_bytes", "viewers"}


def _event_from_dict(d: dict) -> Event:
    return Event.from_dict(d)


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
    header: dict[str, Any] = {}
    events: list[Event] = []
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
    if data is None:
        return None  # missing: rebuilt from the log
    try:
        d = json.loads(data)
        info = SessionInfo(**{k: v for k, v in d.items() if k in _INFO_FIELDS})
    except (TypeError, ValueError, AttributeError):
        return None  # missing or corrupt: rebuilt from the log
    if not isinstance(info.name, str) or info.state not in ("live", "ended") or not isinstance(info.languages, list):
        return None
    if not info.languages and info.target_language and info.counts.get(EventKind.TRANSLATION.value):
        info.languages = [info.target_language]  # metadata written before languages were kept
    return info


def _info_from_log(name: str, header: dict, events: list[Event], mtime: float) -> SessionInfo:
    """Metadata rebuilt from a log: languages from its header, else its first events; ended if
    its last event is an `end`."""

    def first_language(*kinds):
        return next((e.language for e in events if e.kind in kinds and isinstance(e.language, str) and e.language), "")

    source = header.get("source_language") or first_language(EventKind.TRANSCRIPT)
    target = header.get("target_language") or first_language(EventKind.TRANSLATION, EventKind.ENHANCED)
    started = header.get("started_at")
    if not isinstance(started, (int, float)) or not math.isfinite(started):
        # no header: the last write less the audio it holds
        started = mtime - max((e.end_s for e in events if isinstance(e.end_s, (int, float))), default=0.0)
    ended = bool(events) and events[-1].kind == EventKind.END
    languages = list(
        dict.fromkeys(
            e.language for e in events if e.kind == EventKind.TRANSLATION and isinstance(e.language, str) and e.language
        )
    )
    glossary = header.get("glossary")
    return SessionInfo(
        name,
        str(source),
        str(target),
        float(started),
        mtime if ended else None,
        "ended" if ended else "live",
        dict(collections.Counter(e.kind.value for e in events)),
        languages=languages,
        glossary=glossary if isinstance(glossary, list) else [],
    )


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
            view = view[os.write(fd, view) :]
        if sync:
            _sync_data(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit reached",
    errno.EIO: "I/O error",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


def _failed(exc: OSError, what: str) -> StoreError:
    reason = _REASONS.get(exc.errno or 0, "write failed")
    return StoreError(f"{reason} while {what}: {exc.strerror or exc}")


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
