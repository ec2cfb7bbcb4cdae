"""Scoring transcripts against references (tests and bench): WER after normalisation."""

from __future__ import annotations

import re


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: WER counts words, not commas."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(normalize(reference), normalize(hypothesis) or "<empty>")
