"""The small native helper the launcher preloads into tritonserver (hide_secrets.c), built
with the system's C compiler by `scripts/setup.sh` (`python -m livetranslate.launcher.native`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).with_name("hide_secrets.c")
DEFAULT_CACHE = Path(sys.prefix) / "share" / "livetranslate"


class NativeBuildError(RuntimeError):
    pass


def hide_secrets_library(cache_dir: Path = DEFAULT_CACHE, build: bool = True) -> Path:
    """The built library, (re)built when missing or older than its source."""
    target = Path(cache_dir) / "hide_secrets.so"
    if target.is_file() and target.stat().st_mtime >= SOURCE.stat().st_mtime:
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not build or compiler is None:
        raise NativeBuildError(
            f"{target} is missing and no C compiler is here to build it: run scripts/setup.sh "
            "(it keeps the server's keys off the command line that `ps` shows)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(f".{id(target)}.tmp")
    result = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(staging), str(SOURCE)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise NativeBuildError(f"building {SOURCE.name} failed: {result.stderr.strip()}")
    staging.replace(target)
    return target
