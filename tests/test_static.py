"""Static checks over the whole tree, run by the test suite and CI: ruff (lint and format) and
mypy (types), with the project's settings in pyproject.toml; each must find nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TREE = ["livetranslate", "model_repository", "dashboard", "bench", "tests", "scripts", "engine_build"]


def run(*cmd: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing():
    result = run(str(BIN / "ruff"), "check", "--no-cache", *TREE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted_as_ruff_formats_it():
    result = run(str(BIN / "ruff"), "format", "--check", "--no-cache", *TREE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_finds_nothing():
    """The package and the dashboard app in one run; each model.py on its own (Triton loads
    every one as a module named `model`, which one mypy run cannot hold twice)."""
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
    models = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "model_repository").glob("*/1/model.py"))
    assert len(models) >= 8
    for model in models:
        result = run(str(BIN / "mypy"), model)
        assert result.returncode == 0, result.stdout + result.stderr
