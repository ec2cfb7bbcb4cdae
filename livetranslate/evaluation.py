"""Scoring transcripts against references (tests and bench): WER after normalisation."""

from __future__ import annotations

import re


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: WER counts words, not commas."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(normalize(reference), normalize(hypothesis) or "<empty>")


def term_counts(term: str, text: str) -> int:
    """Occurrences of `term` spelled exactly (case included) as whole words."""
    return len(re.findall(rf"(?<!\w){re.escape(term)}(?!\w)", text))


def term_accuracy(terms: list[str], references: list[str], hypotheses: list[str]) -> dict:
    """How many of the terms' occurrences in the references came out spelled exactly right
    in the hypotheses (whole texts: segments need not align with sentences; a term said
    more often than the reference has it counts once per reference occurrence, and the
    surplus as `extra`: a term Whisper read back from its prompt)."""
    reference, hypothesis = " \n ".join(references), " \n ".join(hypotheses)
    per_term = {}
    for term in terms:
        expected = term_counts(term, reference)
        found = term_counts(term, hypothesis)
        per_term[term] = {"expected": expected, "right": min(expected, found), "extra": max(0, found - expected)}
    expected = sum(v["expected"] for v in per_term.values())
    right = sum(v["right"] for v in per_term.values())
    return {"right": right, "expected": expected, "accuracy": round(right / expected, 3) if expected else 0.0,
            "extra": sum(v["extra"] for v in per_term.values()), "terms": per_term}
