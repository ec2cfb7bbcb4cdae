"""How long ended sessions are kept: removing them by age or by the size of the data
directory, and the durations and sizes people write for that."""

from __future__ import annotations

import re
import time

from livetranslate import settings
from livetranslate.store.files import SessionInfo, _dir_bytes, _failed, _fsync_dir

RETENTION_DAYS_ENV, RETENTION_MAX_MB_ENV = "LIVETRANSLATE_RETENTION_DAYS", "LIVETRANSLATE_RETENTION_MAX_MB"


def retention(params: dict[str, str]) -> dict:
    """prune()'s limits at the server's start: `serve --retention-days/--retention-max-mb` (its
    settings), else the `pipeline` model's parameters; empty keeps everything."""
    days = settings.get(RETENTION_DAYS_ENV)
    max_mb = settings.get(RETENTION_MAX_MB_ENV)
    days = days if days is not None else float(params.get("retention_days") or "nan")
    max_mb = max_mb if max_mb is not None else float(params.get("retention_max_mb") or "nan")
    return {
        "max_age_s": days * 86400 if days == days else None,
        "max_total_bytes": int(max_mb * 1e6) if max_mb == max_mb else None,
    }


def prune(
    store, max_age_s: float | None = None, max_total_bytes: int | None = None, dry_run: bool = False
) -> list[SessionInfo]:
    """Removes ended sessions, never live ones: those last active more than `max_age_s`
    ago, then the oldest others until the data directory holds at most `max_total_bytes`.
    Returns what it removed (with dry_run: would remove), oldest first. A store without
    the directory's lock takes it for the while (StoreError if a server holds it)."""
    if max_age_s is not None and not max_age_s >= 0:
        raise ValueError(f"max_age_s must be seconds >= 0, got {max_age_s!r}")
    if max_total_bytes is not None and not max_total_bytes >= 0:
        raise ValueError(f"max_total_bytes must be >= 0, got {max_total_bytes!r}")
    with store._lock, store._owning(not dry_run):
        now = time.time()
        total = _dir_bytes(store.data_dir)
        ended = sorted(
            (
                (stem, info)
                for stem, info in store._scan()
                if info.state == "ended" and info.name not in store._infos and not store._live[info.name]
            ),
            key=lambda found: found[1].last_active,
        )
        removed = []
        for stem, info in ended:
            too_old = max_age_s is not None and now - info.last_active > max_age_s
            too_big = max_total_bytes is not None and total > max_total_bytes
            if not (too_old or too_big):
                break  # oldest first: none after this one is older or needed
            if not dry_run:
                for path in store._stem_paths(stem):
                    try:
                        path.unlink(missing_ok=True)
                    except OSError as exc:
                        raise _failed(exc, f"removing {path}") from exc
            total -= info.size_bytes
            removed.append(info)
        if removed and not dry_run and store.fsync:
            _fsync_dir(store.data_dir)
        return removed


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_duration(text: str) -> float:
    """Seconds in "45s", "90m", "12h", "30d" or "2w"."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*", text.lower())
    if not m or m.group(2) not in _DURATION_UNITS:
        raise ValueError(f"{text!r} is not a duration: give a number and a unit (s, m, h, d, w), e.g. 30d, 12h or 90m")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_size(text: str) -> int:
    """Bytes in "500MB", "2GB" (powers of 1000), "1.5GiB" (powers of 1024) or "4096"."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in _SIZE_UNITS:
        raise ValueError(
            f"{text!r} is not a size: give a number and a unit (B, KB, MB, GB, TB, or KiB, "
            f"MiB, GiB, TiB), e.g. 500MB or 2GB"
        )
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def format_size(size: float) -> str:
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
