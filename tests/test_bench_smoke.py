"""The benches end to end on short recordings: each starts a real server, streams, and writes a
complete report. The streaming bench (bench/bench_streaming.py) in real time and under load;
the accuracy bench (bench/bench_accuracy.py) on the natural recording's short cut."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_streaming_bench_smoke(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_streaming.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads((tmp_path / "streaming-smoke.json").read_text())
    assert 0 <= data["wer"]["offline"] < 0.5 and 0 <= data["wer"]["streaming"] < 0.5
    assert data["latency_ms"]["partials_on"]["n"] == 5  # one final per sentence
    assert data["rtf"]["streaming_fast"] > 0 and data["cpu_cores_used"]["realtime"] > 0
    assert data["boundary_repeats"] == []
    assert data["concurrency"]["levels"][0]["streams"] == 2
    assert data["whisper_batch"]["triton"]["requests"] >= data["whisper_batch"]["triton"]["executions"] > 0
    assert "| WER offline" in (tmp_path / "streaming-smoke.md").read_text()


@pytest.mark.slow
def test_accuracy_bench_smoke_on_the_natural_recordings_short_cut(tmp_path):
    """bench/bench_accuracy.py on the natural recording's first half minute (four voices,
    reverb, noise): the faster-whisper anchors, then a real server streamed in real time with
    translation on. Bounds are loose: they catch a broken pipeline, not a small regression."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_accuracy.py"),
            "--smoke",
            "--only",
            "natural",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads((tmp_path / "accuracy-smoke.json").read_text())
    assert list(data["recordings"]) == ["natural"]
    r = data["recordings"]["natural"]
    assert 20 <= r["audio_s"] <= 45 and r["utterances"] >= 5  # the short cut, not the whole meeting
    for decoded in ("per_utterance", "live"):
        assert 0 <= r["wer"][decoded]["wer_numbers"] < 0.5, (decoded, r["wer"])
    # faster-whisper on the whole half minute loops on its last sentence into the padded end
    # of its second window ("bis zum 4. März bis zum 4. März ..."): that anchor is only present
    assert 0 <= r["wer"]["offline"]["wer_numbers"] <= 1.5, r["wer"]
    latency = r["latency_ms"]
    assert latency["transcript"]["n"] >= r["utterances"] // 2
    assert 0 < latency["transcript"]["p50"] <= latency["transcript"]["p95"] < 15_000
    assert latency["translation"]["n"] >= r["utterances"] // 2 and latency["translation"]["p50"] > 0
    assert r["translation"]["failed"] == 0
    assert r["translation"]["basic"]["chrf"] > 20 and r["translator_alone"]["chrf"] > 20
    report = (tmp_path / "accuracy-smoke.md").read_text()
    assert "## natural" in report and "| livetranslate live |" in report
