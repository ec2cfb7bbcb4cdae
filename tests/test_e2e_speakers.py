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
    for e in events:  # a later look at the voices moved a line: the list counts it where it is now
        if e["kind"] == "speaker_update":
            assert e["segment_id"] in said and re.fullmatch(r"S\d+", e["speaker"])
            said[e["segment_id"]] = e["speaker"]
    assert [row.split()[0] for row in rows] == sorted(set(said.values()), key=lambda s: int(s[1:]))
    assert sum(int(row.split()[2]) for row in rows) == len(transcripts)  # every labelled line counted once

    # names: kept with the session, in the list and the exports
    first = rows[0].split()[0]
    named = subprocess.run(
        CLI + ["speakers", "rename", name, first, "Anna <i>Lena</i>", "--url", server.grpc_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert named.returncode == 0 and named.stdout.strip() == f"{first} is Anna <i>Lena</i>", named.stderr
    listed = subprocess.run(
        CLI + ["speakers", "list", name, "--url", server.grpc_url], capture_output=True, text=True, timeout=120
    )
    assert listed.stdout.splitlines()[0].startswith(f"{first:<4} Anna <i>Lena</i>")
    exported = subprocess.run(
        CLI + ["export", name, "--format", "txt", "--lang", "source", "--url", server.grpc_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    mine = [sid for sid, label in said.items() if label == first]
    assert exported.count("] Anna <i>Lena</i>: ") == len(mine), exported
    # bad names and labels: a clear answer, nothing stored
    for label, bad, code, why in (
        (
            "S99",
            "Bob",
            1,
            f"has no speaker S99 (its speakers are {', '.join(sorted(set(said.values()), key=lambda s: int(s[1:])))})",
        ),
        (first, "x" * 10_000, 2, "at most 60 characters, got 10000"),
        (first, " \n ", 2, "needs at least one letter"),
        ("Anna", "Bob", 2, "name a speaker by its label (S1, S2, ...)"),
    ):
        refused = subprocess.run(
            CLI + ["speakers", "rename", name, label, bad, "--url", server.grpc_url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == code and why in refused.stderr, refused.stderr
    again = subprocess.run(
        CLI + ["export", name, "--format", "jsonl", "--url", server.grpc_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    names = [json.loads(line) for line in again.splitlines() if '"speaker_name"' in line]
    assert [(e["speaker"], e["text"]) for e in names] == [(first, "Anna <i>Lena</i>")]
    unknown = subprocess.run(
        CLI + ["speakers", "list", name + "x", "--url", server.grpc_url], capture_output=True, text=True, timeout=120
    )
    assert unknown.returncode == 1 and name in unknown.stderr  # did you mean
