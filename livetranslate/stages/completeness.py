"""Is this text a complete thought? The `completeness` model's logic
(model_repository/completeness): the LLM's P(yes) against thresholds calibrated per model."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from livetranslate.stages.llm.prompts import completeness_prompt

SENTENCE_END = re.compile(r"[.!?…][\"'”»)]*\s*$")


@dataclass(frozen=True)
class CompletenessThresholds:
    """P(yes) needed to call a text complete, with and without sentence-final punctuation.
    Defaults calibrated on tests/data/completeness_dev.jsonl (bench/calibrate_completeness.py)."""

    punctuated: float = 0.5
    unpunctuated: float = 0.9


@dataclass
class CompletenessChecker:
    yes_probability: Callable[[str], float]
    family: str = "chatml"
    thresholds: CompletenessThresholds = CompletenessThresholds()

    def probability(self, text: str, source: str) -> float:
        return self.yes_probability(completeness_prompt(self.family, text, source))

    def decide(self, text: str, probability: float) -> bool:
        punctuated = bool(SENTENCE_END.search(text))
        threshold = self.thresholds.punctuated if punctuated else self.thresholds.unpunctuated
        return probability >= threshold

    def check(self, text: str, source: str) -> tuple[bool, float]:
        if not text.strip():
            return False, 0.0
        p = self.probability(text, source)
        return self.decide(text, p), p
