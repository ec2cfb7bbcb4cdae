"""llama.cpp through llama-cpp-python: the CPU LLM engine (GGUF weights)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from livetranslate import settings
from livetranslate.stages.llm import GenerationRequest, LlmEngine

if TYPE_CHECKING:
    from llama_cpp.llama_types import CreateCompletionStreamResponse

# llama.cpp repacks the weights for the CPU's matrix extensions (AVX-512, AMX) when it loads
# them. A virtual machine may advertise AMX and fault on it (moved to another host after it
# booted: the LLM's process dies of SIGILL in `tileloadd`). REPACK_ENV=0 loads them as they are.
REPACK_ENV = "LIVETRANSLATE_LLAMA_REPACK"  # livetranslate.settings
# tokens of a prompt evaluated between two calls of `prefill`'s `between` (about 0.1-0.2 s of
# CPU for Qwen 1.5B on 2 cores: what urgent work may wait for a background prompt at most)
PREFILL_PIECE = 16


@contextlib.contextmanager
def _repacking(on: bool):
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def without_repacking():
        params = original()
        params.use_extra_bufts = False
        return params

    if not on:
        lib.llama_model_default_params = without_repacking
    try:
        yield
    finally:
        lib.llama_model_default_params = original


class LlamaCppEngine(LlmEngine):
    def __init__(
        self, model_path: str | Path, *, n_threads: int = 2, n_ctx: int = 2048, seed: int = 0, prompt_cache_mb: int = 0
    ):
        """`prompt_cache_mb`: keep the states of recent prompts in RAM (llama-cpp-python's
        LlamaRAMCache), so a prompt whose beginning was evaluated before, even with other
        prompts in between, starts from there: a context that serves several kinds of prompt."""
        # Spinning OpenMP threads starve Whisper and each other on a shared 2-core machine.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from llama_cpp import Llama

        model_path = Path(model_path)
        if model_path.is_dir():
            ggufs = sorted(model_path.glob("*.gguf"))
            if not ggufs:
                raise FileNotFoundError(f"no .gguf file in {model_path}: run `livetranslate models fetch`")
            model_path = ggufs[0]
        if not model_path.is_file():
            raise FileNotFoundError(f"{model_path}: no such GGUF file")
        with _repacking(settings.get(REPACK_ENV)):
            self.llm = Llama(
                model_path=str(model_path),
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_ctx=n_ctx,
                seed=seed,
                verbose=False,
                logits_all=False,
            )
        if prompt_cache_mb:
            from llama_cpp import LlamaRAMCache

            self.llm.set_cache(LlamaRAMCache(capacity_bytes=prompt_cache_mb << 20))

    def generate(self, request: GenerationRequest) -> Iterator[str]:
        completion = self.llm.create_completion(
            request.prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_k=max(1, request.top_k),
            stop=list(request.stop) or None,
            stream=True,
        )
        # stream=True gives the chunks; create_completion's annotation does not tell the two returns apart
        for chunk in cast("Iterator[CreateCompletionStreamResponse]", completion):
            text = chunk["choices"][0]["text"]
            if text:
                yield text

    def prefill(self, prompt: str, between: Callable[[], None]) -> None:
        # all but the last token: create_completion and next_token_logprobs find them in the
        # context (the longest common prefix) and evaluate only the rest
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        self._eval_reusing_prefix(tokens, between=between, last=False)

    def next_token_logprobs(self, prompt: str, candidates: tuple[str, ...]) -> dict[str, float]:
        import llama_cpp
        import numpy as np

        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        self._eval_reusing_prefix(tokens)
        # Without logits_all (2 GB for a 262k vocabulary) Llama.scores stays empty: read the
        # last position's logits from the context.
        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),)).astype(np.float64)
        logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        out = {}
        for word in candidates:
            ids = self.llm.tokenize(word.encode("utf-8"), add_bos=False, special=False)
            if ids:
                out[word] = float(logprobs[ids[0]])
        return out

    def _eval_reusing_prefix(
        self, tokens: list[int], between: Callable[[], None] | None = None, last: bool = True
    ) -> None:
        """Evaluates `tokens` (all but the last unless `last`), starting after what the context
        holds of them already (the system turn of the previous check): `eval` drops the cache
        beyond `n_tokens`. With `between`, in pieces of PREFILL_PIECE tokens, calling it after
        each."""
        from llama_cpp import Llama

        def same(ids) -> int:
            return Llama.longest_token_prefix(list(ids), tokens)

        cache = self.llm.cache
        if cache is not None:  # a state held for a prompt that starts alike (the last check)
            try:
                state = cache[tokens]
                if same(state.input_ids.tolist()) > same(self.llm.input_ids[: self.llm.n_tokens].tolist()):
                    self.llm.load_state(state)
            except KeyError:
                pass
        keep = min(same(self.llm.input_ids[: self.llm.n_tokens].tolist()), len(tokens) - 1)  # one is evaluated
        if keep > 0:
            self.llm.n_tokens = keep
        else:
            self.llm.reset()
        todo = tokens[keep:] if last else tokens[keep:-1]
        step = PREFILL_PIECE if between is not None else max(1, len(todo))
        for start in range(0, len(todo), step):
            self.llm.eval(todo[start : start + step])
            if between is not None and start + step < len(todo):
                between()
        if cache is not None and last:
            cache[tokens] = self.llm.save_state()


def check_runs(model_path: str | Path) -> str:
    """Loads a GGUF and generates a few tokens: a llama.cpp built for another CPU dies here of
    SIGILL (run it in a process of its own). Returns the text."""
    engine = LlamaCppEngine(model_path, n_ctx=256)
    return "".join(engine.generate(GenerationRequest("Guten Morgen,", max_tokens=3)))


if __name__ == "__main__":  # scripts/setup.sh: does the installed llama.cpp run on this CPU?
    import sys

    from livetranslate.weights.catalog import resolve

    print(repr(check_runs(resolve(sys.argv[1] if len(sys.argv) > 1 else "gemma3-270m"))))
