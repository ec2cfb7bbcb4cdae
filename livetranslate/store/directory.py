"""One data directory of the session store: its lock (one server at a time), where each
session's files are, and its metadata written durably or rebuilt from its log."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

from livetranslate.store.files import (
    _INFO_FIELDS,
    HEADER_KEY,
    LOCK_FILE,
    LOG_SUFFIX,
    META_SUFFIX,
    SessionInfo,
    StoreError,
    _failed,
    _fsync_dir,
    _info_from_log,
    _legacy_name,
    _line,
    _parse_log,
    _read_regular,
    default_data_dir,
    safe_name,
)


class DataDirectory:
    def __init__(self, data_dir: Path | None = None, *, fsync: bool = True, exclusive: bool = False):
        self.data_dir = Path(data_dir or default_data_dir())
        self.fsync = fsync  # off only for benches and tests: a machine crash may then lose events
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # transcripts are private
        self._owner_fd = self._take_lock() if exclusive else None

    def _let_go(self) -> None:
        if self._owner_fd is not None:
            os.close(self._owner_fd)  # releases the flock
            self._owner_fd = None

    def _take_lock(self) -> int:
        """Holds `<data_dir>/.lock` (flock: the kernel lets go when this process ends, however
        it ends) and writes this process's id into it for the next one's message."""
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"data directory {self.data_dir} is in use by another livetranslate server (pid {holder})"
            ) from None
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
