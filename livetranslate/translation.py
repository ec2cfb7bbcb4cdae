"""Basic translation and the completeness check, over any way of reaching an LLM."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from livetranslate.llm import GenerationRequest
from livetranslate.llm.prompts import clean_translation, completeness_prompt, looks_like_garbage, translation_prompt


class TranslationError(RuntimeError):
    pass


@dataclass
class Translator:
    generate: Callable[[GenerationRequest], str]
    family: str = "chatml"
    max_tokens_per_char: float = 0.6  # German -> English: ~0.3 tokens per source char; headroom x2

    def translate(self, text: str, source: str, target: str, context: str = "") -> str:
        if not text.strip():
            raise TranslationError("nothing to translate")
        prompt = translation_prompt(self.family, text, source, target, context)
        max_tokens = int(32 + self.max_tokens_per_char * len(text))
        raw = self.generate(GenerationRequest(prompt.text, max_tokens=max_tokens, stop=prompt.stop))
        translation = clean_translation(raw)
        problem = looks_like_garbage(text, translation)
        if problem:
            raise TranslationError(problem)
        return translation


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
