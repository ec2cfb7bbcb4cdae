"""Basic translation of one transcript over any way of reaching an LLM: the `translate`
model's logic (model_repository/translate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from livetranslate.glossary import NO_GLOSSARY, Glossary
from livetranslate.llm import GenerationRequest
from livetranslate.llm.prompts import clean_translation, looks_like_garbage, translation_prompt


class TranslationError(RuntimeError):
    pass


@dataclass
class Translator:
    generate: Callable[[GenerationRequest], str]
    family: str = "chatml"
    max_tokens_per_char: float = 0.6  # German -> English: ~0.3 tokens per source char; headroom x2

    def translate(self, text: str, source: str, target: str, context: str = "",
                  glossary: Glossary = NO_GLOSSARY) -> str:
        """`glossary`: the session's; the pairs whose term occurs in `text` go into the prompt."""
        if not text.strip():
            raise TranslationError("nothing to translate")
        terms = glossary.relevant(text).pairs()
        prompt = translation_prompt(self.family, text, source, target, context, terms)
        max_tokens = int(32 + self.max_tokens_per_char * len(text))
        raw = self.generate(GenerationRequest(prompt.text, max_tokens=max_tokens, stop=prompt.stop))
        translation = clean_translation(raw)
        problem = looks_like_garbage(text, translation)
        if problem:
            raise TranslationError(problem)
        return translation
