"""The gpu profile's `llm` is TensorRT-LLM's ensemble (preprocessing → tensorrt_llm →
postprocessing, from the tensorrtllm_backend); this is the one step we add to it.

`completeness` asks `llm` for P(yes)/(P(yes)+P(no)) of the next token (the cpu profile's
`return_yes_probability`). The ensemble maps that flag to tensorrt_llm's
`return_generation_logits` (the engine is built with --gather_generation_logits), and the
`yes_probability` model turns the first generated position's logits into the number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livetranslate.stages.llm import NO_WORDS, YES_WORDS


def first_token_ids(encode, words: tuple[str, ...]) -> list[int]:
    """The first token of each word (" Yes" and "Yes" are different tokens), deduplicated."""
    ids = []
    for word in words:
        tokens = encode(word)
        if tokens and tokens[0] not in ids:
            ids.append(tokens[0])
    return ids


def yes_probability(logits: np.ndarray, yes_ids: list[int], no_ids: list[int]) -> float:
    """P(yes) / (P(yes) + P(no)) from the logits of the first generated position (beam 0)."""
    row = np.asarray(logits, dtype=np.float64)
    row = row.reshape(-1, row.shape[-1])[0]
    probs = np.exp(row - row.max())
    yes, no = probs[yes_ids].sum(), probs[no_ids].sum()
    return 0.5 if yes + no == 0 else float(yes / (yes + no))


class YesNoScorer:
    """Knows the yes/no token ids of one tokenizer (a Hugging Face tokenizer folder)."""

    def __init__(self, tokenizer_dir: str | Path):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))

        def encode(word: str) -> list[int]:
            return tokenizer.encode(word, add_special_tokens=False).ids

        self.yes_ids = first_token_ids(encode, YES_WORDS)
        self.no_ids = first_token_ids(encode, NO_WORDS)

    def __call__(self, logits: np.ndarray | None) -> float:
        """NaN when the request did not ask (no logits came): nobody reads it then."""
        return (
            float("nan") if logits is None or logits.size == 0 else yes_probability(logits, self.yes_ids, self.no_ids)
        )
