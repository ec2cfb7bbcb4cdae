"""llm (cpu profile): thin Triton glue over livetranslate.llm (llama.cpp)."""

import numpy as np

from livetranslate import protocol as P
from livetranslate.llm import GenerationRequest, create_engine
from livetranslate.models import llm_choice, resolve
from livetranslate.triton import codecs, glue


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        choice = llm_choice(params["model"])
        self.engine = create_engine(
            params["engine"], str(resolve(choice.model)),
            n_threads=int(params["n_threads"]), n_ctx=int(params["n_ctx"]),
        )
        # one token now: a llama.cpp that cannot run on this CPU fails the load (and `serve`
        # says so), instead of dying at every translation
        "".join(self.engine.generate(GenerationRequest("Hallo", max_tokens=1)))

    def execute(self, requests):
        for request in requests:
            glue.respond_decoupled(request, lambda: self._answer(request), P.LLM)
        return None

    def _answer(self, request):
        glue.check_internal(request, P.LLM)
        get = glue.inputs(request)
        generation = codecs.generation_from(get)
        if codecs.scalar(get, P.RETURN_YES_PROBABILITY, False):
            p = self.engine.yes_probability(generation.prompt)
            yield {
                P.TEXT_OUTPUT: codecs.text_tensor("Yes" if p >= 0.5 else "No", batch=True),
                P.YES_PROBABILITY: np.array([[p]], dtype=np.float32),
            }
            return
        pieces = self.engine.generate(generation)
        if codecs.scalar(get, P.STREAM, False):
            for piece in pieces:
                yield {P.TEXT_OUTPUT: codecs.text_tensor(piece, batch=True)}
        else:
            yield {P.TEXT_OUTPUT: codecs.text_tensor("".join(pieces), batch=True)}
