"""The streaming bench (bench/bench_streaming.py) end to end on a short recording: it starts
a real server, streams in real time and under load, and writes a complete report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_streaming_bench_smoke(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_streaming.py"), "--smoke", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads((tmp_path / "streaming-smoke.json").read_text())
    assert 0 <= data["wer"]["offline"] < 0.5 and 0 <= data["wer"]["streaming"] < 0.5
    assert data["latency_ms"]["partials_on"]["n"] == 5  # one final per sentence
    assert data["rtf"]["streaming_fast"] > 0 and data["cpu_cores_used"]["realtime"] > 0
    assert data["boundary_repeats"] == []
    assert data["concurrency"]["levels"][0]["streams"] == 2
    assert data["whisper_batch"]["triton"]["requests"] >= data["whisper_batch"]["triton"]["executions"] > 0
    assert "| WER offline" in (tmp_path / "streaming-smoke.md").read_text()
