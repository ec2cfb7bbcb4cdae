"""Basic translation of one transcript over any way of reaching an LLM: the `translate`
model's logic (model_repository/translate)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from livetranslate.glossary import NO_GLOSSARY, Glossary
from livetranslate.numbers import clock_times
from livetranslate.stages.llm import GenerationRequest
from livetranslate.stages.llm.prompts import (
    clean_translation,
    looks_like_garbage,
    missed_pitfalls,
    translation_prompt,
)

log = logging.getLogger("livetranslate.stages.translate")


class TranslationError(RuntimeError):
    pass


@dataclass
class Interim:
    """The translation so far, as the LLM generates it, for `on_interim`: whole words only
    (the last one may still grow), cleaned like the final, at most every `min_interval_s`."""

    on_interim: Callable[[str], None]
    source: str = ""  # the text translated (clean_translation)
    min_interval_s: float = 0.3
    clock: Callable[[], float] = time.monotonic
    _raw: str = ""
    _shown: str = ""
    _at: float = field(default=float("-inf"))

    def piece(self, piece: str) -> None:
        self._raw += piece
        if self.clock() - self._at < self.min_interval_s:
            return
        done = re.sub(r"\S*$", "", self._raw)  # up to the last whole word
        text = clean_translation(done, self.source)
        if text and text != self._shown and len(text) > len(self._shown):
            self._shown, self._at = text, self.clock()
            self.on_interim(text)


@dataclass
class Translator:
    # (request, **options) -> the text; options (only when asked): lane (the llm lane) and
    # on_piece (called with each piece as it is generated)
    generate: Callable[..., str]
    family: str = "chatml"
    max_tokens_per_char: float = 0.6  # German -> English: ~0.3 tokens per source char; headroom x2

    def translate(
        self,
        text: str,
        source: str,
        target: str,
        context: str = "",
        glossary: Glossary = NO_GLOSSARY,
        *,
        on_interim: Callable[[str], None] | None = None,
        **options,
    ) -> str:
        """`glossary`: the session's; the pairs whose term occurs in `text` go into the prompt.
        `on_interim`: called with the translation so far while it is generated (Interim).
        `options` go to `generate` as they are (the llm lane). A translation that misses the
        meaning of a word small LLMs often flip ("zu wenig", "kaum", "nicht müssen":
        prompts.missed_pitfalls) is made once more with a hint, and the better one kept."""
        if not text.strip():
            raise TranslationError("nothing to translate")
        terms = glossary.relevant(text).pairs()
        translation = self._once(text, source, target, context, terms, (), on_interim, options)
        hints = missed_pitfalls(text, translation, source, target) if self.family != "fewshot" else []
        if hints:  # once more, told what it got wrong (a few-shot prompt has no place for hints)
            log.info("translation retried: %s: %.200r -> %.200r", "; ".join(hints), text, translation)
            try:
                again = self._once(text, source, target, context, terms, hints, None, options)
            except TranslationError:
                return translation
            if len(missed_pitfalls(text, again, source, target)) < len(hints):
                return again
        return translation

    def _once(self, text, source, target, context, terms, hints, on_interim, options) -> str:
        # the LLM reads clock idioms as digits ("halb drei" -> 2:30): they are easy to turn into 3:30
        prompt = translation_prompt(
            self.family, clock_times(text, source), source, target, clock_times(context, source), terms, hints
        )
        max_tokens = int(32 + self.max_tokens_per_char * len(text))
        options = dict(options)
        if on_interim is not None:
            options["on_piece"] = Interim(on_interim, text).piece
        raw = self.generate(GenerationRequest(prompt.text, max_tokens=max_tokens, stop=prompt.stop), **options)
        translation = clean_translation(raw, text)
        problem = looks_like_garbage(text, translation, target, raw)
        if problem:
            log.warning("translation refused: %s: %.200r -> %.200r", problem, text, raw)
            raise TranslationError(problem)
        if " ".join(raw.split()) != translation:
            log.info("translation cleaned: %.200r -> %.200r", raw, translation)
        return translation
