"""Shared-memory regions that Triton's Python backend leaves in /dev/shm.

Each stub process talks to tritonserver through a region `/dev/shm/triton_python_backend_
shm_region_<uuid>` that the server removes when it stops. A server killed with SIGKILL (or
out of memory) leaves its regions behind, and a machine that restarts servers that way
fills /dev/shm: a stub whose region can no longer grow dies of SIGBUS. `serve` removes the
regions that no process maps before it starts Triton.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")
PREFIX = "triton_python_backend_shm_region_"


def mapped_files() -> set[str]:
    """Paths of every file some process on this machine maps (those we may read)."""
    paths = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/maps") as maps:
                for line in maps:
                    parts = line.split(None, 5)
                    if len(parts) == 6:
                        paths.add(parts[5].strip().removesuffix(" (deleted)"))
        except OSError:
            continue
    return paths


def remove_stale_regions(directory: Path = SHM_DIR, min_age_s: float = 60.0) -> list[Path]:
    """Remove the Python backend's regions that no process maps and that are older than
    `min_age_s` (a server that is starting has created but maybe not yet mapped its own).
    Returns what was removed."""
    try:
        candidates = [p for p in directory.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return []
    if not candidates:
        return []
    mapped, now, removed = mapped_files(), time.time(), []
    for path in candidates:
        try:
            if str(path) in mapped or now - path.stat().st_mtime < min_age_s:
                continue
            path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed
