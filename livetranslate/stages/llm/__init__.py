"""The `llm` model's logic (model_repository/llm): LLM engines behind one interface
(llama.cpp on CPU; TensorRT-LLM in the gpu profile is a Triton ensemble with the same I/O),
and the prompts per model family."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_tokens: int = 200
    temperature: float = 0.0
    top_k: int = 1
    stop: tuple[str, ...] = field(default_factory=tuple)


class LlmEngine(abc.ABC):
    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> Iterator[str]:
        """Yields text pieces as they are generated."""

    @abc.abstractmethod
    def next_token_logprobs(self, prompt: str, candidates: tuple[str, ...]) -> dict[str, float]:
        """Log-probability that the next token is (the first token of) each candidate."""

    def prefill(self, prompt: str, between: Callable[[], None]) -> None:  # noqa: B027 (optional: a no-op)
        """Evaluates the prompt ahead of `generate` or `yes_probability` in pieces, calling
        `between()` after each (it may pause, or raise to drop the call): a long prompt then
        waits for urgent work instead of holding the CPU for its whole evaluation. An engine
        that cannot (the default) leaves the prompt to `generate`."""

    def yes_probability(self, prompt: str) -> float:
        """P(yes) / (P(yes) + P(no)) for the next token: small models say "yes" to almost
        anything in free text, but rank well by this probability."""
        logprobs = self.next_token_logprobs(prompt, YES_WORDS + NO_WORDS)
        yes = sum(math.exp(logprobs[w]) for w in YES_WORDS if w in logprobs)
        no = sum(math.exp(logprobs[w]) for w in NO_WORDS if w in logprobs)
        return 0.5 if yes + no == 0 else yes / (yes + no)


YES_WORDS = ("Yes", " Yes", "yes", " yes")
NO_WORDS = ("No", " No", "no", " no")


def create_engine(name: str, model_path: str, **params) -> LlmEngine:
    if name == "llama_cpp":
        from livetranslate.stages.llm.llamacpp import LlamaCppEngine

        return LlamaCppEngine(model_path, **params)
    raise ValueError(f"unknown LLM engine {name!r}: the cpu profile uses llama_cpp")
