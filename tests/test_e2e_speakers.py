"""Speaker labels and word times from a real server: the natural meeting's first half minute
(several voices, room reverb, noise) streamed by the CLI with --speakers; every transcript
comes back with a label and its words, translations carry their transcript's label, and the
voices are told apart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest
from conftest import ROOT

from livetranslate.quality.samples_natural import make_natural

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]


def test_the_cli_labels_speakers_and_times_words(server):
    recording = make_natural(ROOT / ".cache" / "test-audio")["natural_short"]
    name = f"speakers-{uuid.uuid4().hex[:6]}"
    out = subprocess.run(
        CLI
        + ["stream", str(recording), "--url", server.grpc_url, "--format", "jsonl", "--speakers", "--session", name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    transcripts = [e for e in events if e["kind"] == "transcript"]
    assert len(transcripts) >= 4
    assert all(re.fullmatch(r"S\d+", e.get("speaker", "")) for e in transcripts), transcripts
    assert len({e["speaker"] for e in transcripts}) >= 2  # several voices, told apart
    said = {e["segment_id"]: e["speaker"] for e in transcripts}
    translations = [e for e in events if e["kind"] == "translation" and not e["error"]]
    assert translations and all(t["speaker"] == said[t["segment_id"]] for t in translations)
    for e in transcripts:  # one timed word per word of the text, inside the recording
        assert [w["word"] for w in e["words"]] == e["text"].split()
        assert all(0 <= w["start_s"] <= w["end_s"] <= 31 for w in e["words"])

    # who spoke, and for how long, from the stored session
    listed = subprocess.run(
        CLI + ["speakers", "list", name, "--url", server.grpc_url], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert [row.split()[0] for row in rows] == sorted({e["speaker"] for e in transcripts}, key=lambda s: int(s[1:]))
    assert sum(int(row.split()[2]) for row in rows) == len(transcripts)  # every labelled line counted once
    unknown = subprocess.run(
        CLI + ["speakers", "list", name + "x", "--url", server.grpc_url], capture_output=True, text=True, timeout=120
    )
    assert unknown.returncode == 1 and name in unknown.stderr  # did you mean
