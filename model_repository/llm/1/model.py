"""llm (cpu profile): thin Triton glue over livetranslate.llm (llama.cpp)."""

import numpy as np

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.llm import GenerationRequest, create_engine
from livetranslate.models import llm_choice, resolve


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        choice = llm_choice(params["model"])
        self.engine = create_engine(
            params["engine"], str(resolve(choice.model)),
            n_threads=int(params["n_threads"]), n_ctx=int(params["n_ctx"]),
        )

    def execute(self, requests):
        for request in requests:
            triton.respond_decoupled(request, lambda: self._answer(request), "llm")
        return None

    def _answer(self, request):
        triton.check_internal(request, P.LLM)
        prompt = triton.text(request, P.TEXT_INPUT)
        if not prompt:
            raise P.ProtocolError("text_input is empty")
        if triton.scalar(request, P.RETURN_YES_PROBABILITY, False):
            p = self.engine.yes_probability(prompt)
            yield {
                P.TEXT_OUTPUT: triton.text_tensor("Yes" if p >= 0.5 else "No", batch=True),
                P.YES_PROBABILITY: np.array([[p]], dtype=np.float32),
            }
            return
        stop = triton.get(request, P.STOP_WORDS)
        generation = GenerationRequest(
            prompt,
            max_tokens=int(triton.scalar(request, P.MAX_TOKENS, 200)),
            temperature=float(triton.scalar(request, P.TEMPERATURE, 0.0)),
            top_k=int(triton.scalar(request, P.TOP_K, 1)),
            stop=tuple(w.decode("utf-8") for w in stop.reshape(-1)) if stop is not None else (),
        )
        pieces = self.engine.generate(generation)
        if triton.scalar(request, P.STREAM, False):
            for piece in pieces:
                yield {P.TEXT_OUTPUT: triton.text_tensor(piece, batch=True)}
        else:
            yield {P.TEXT_OUTPUT: triton.text_tensor("".join(pieces), batch=True)}
