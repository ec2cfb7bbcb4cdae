"""Engines and the TensorRT-LLM that runs them must be the same release.

An engine built by another TensorRT-LLM fails to load or, worse, loads and misbehaves (the
seed's worst pitfall). trtllm-build writes its version into each engine's config.json; the
gpu models check it before loading. engine_build/versions.py pins the release itself.
"""

from __future__ import annotations

import json
from pathlib import Path


class VersionMismatch(RuntimeError):
    pass


def release(version: str) -> str:
    """0.17.0.post1 and 0.17.0 are one release; local build tags do not matter."""
    core = version.split("+")[0]
    for marker in (".post", ".dev"):
        core = core.split(marker)[0]
    return core


def engine_version(engine_dir: str | Path) -> str | None:
    """The TensorRT-LLM version trtllm-build wrote into an engine's config.json."""
    config = Path(engine_dir) / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("version")


def check_engine_version(engine_dir: str | Path, running: str) -> None:
    """Refuses an engine built by another TensorRT-LLM than the one running now."""
    built = engine_version(engine_dir)
    if built is None:
        raise VersionMismatch(f"{engine_dir} is not a TensorRT-LLM engine (no config.json with a version)")
    if release(built) != release(running):
        raise VersionMismatch(
            f"the engine in {engine_dir} was built by TensorRT-LLM {built} but this server runs "
            f"{running}: rebuild it with engine_build in this image"
        )
