"""llm (cpu profile): thin Triton glue over livetranslate.stages.llm (llama.cpp) and its lanes
(livetranslate.stages.llm.lanes): requests are answered from worker threads, so an urgent call
runs while a background one is paused between tokens."""

import concurrent.futures
import functools

import numpy as np

from livetranslate import protocol as P
from livetranslate.stages.llm import GenerationRequest, create_engine
from livetranslate.stages.llm.lanes import Lanes
from livetranslate.triton import codecs, glue
from livetranslate.weights.catalog import llm_choice, resolve


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        choice = llm_choice(params["model"])
        n_threads, n_ctx = int(params["n_threads"]), int(params["n_ctx"])

        def engine(model, **extra):
            return create_engine(params["engine"], str(resolve(model)), n_threads=n_threads, n_ctx=n_ctx, **extra)

        # the background context serves several kinds of prompt (windows, checks, other
        # languages): the states of recent ones are kept, so each starts after its system turn
        main = engine(choice.model, prompt_cache_mb=int(params.get("prompt_cache_mb", "64")))
        # one token now: a llama.cpp that cannot run on this CPU fails the load (and `serve`
        # says so), instead of dying at every translation
        "".join(main.generate(GenerationRequest("Hallo", max_tokens=1)))
        urgent = engine(choice.model) if params.get("urgent_context", "true") == "true" else None
        fast_model = params.get("fast_model", "")
        fast = engine(fast_model) if fast_model and fast_model != choice.model else None
        self.lanes = Lanes(
            main,
            urgent,
            fast,
            max_pause_s=float(params.get("max_pause_s", "2")),
            max_waiting=int(params.get("max_waiting", "32")),
        )
        # a lane whose call hangs is logged (where every llm thread is) and its calls move on
        self.lanes.start_watchdog()
        # a thread per call in flight, urgent calls on threads of their own: background calls
        # waiting for their turn never hold up an urgent one
        self.workers = {
            lane: concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix=f"llm-{lane}")
            for lane in ("urgent", "background")
        }

    def execute(self, requests):
        for request in requests:
            lane = self._lane(request)
            pool = self.workers["urgent" if lane in ("urgent", "fast") else "background"]
            pool.submit(glue.respond_decoupled, request, functools.partial(self._answer, request, lane), P.LLM)
        return None

    def finalize(self):
        for pool in self.workers.values():
            pool.shutdown(wait=True)

    @staticmethod
    def _lane(request) -> str:
        return str(glue.request_parameter(request, P.LLM_LANE_PARAMETER))

    def _answer(self, request, lane: str):
        glue.check_internal(request, P.LLM)
        get = glue.inputs(request)
        generation = codecs.generation_from(get)
        if codecs.scalar(get, P.RETURN_YES_PROBABILITY, False):
            p = self.lanes.yes_probability(generation.prompt)
            yield {
                P.TEXT_OUTPUT: codecs.text_tensor("Yes" if p >= 0.5 else "No", batch=True),
                P.YES_PROBABILITY: np.array([[p]], dtype=np.float32),
            }
            return
        pieces = self.lanes.generate(generation, lane)
        if codecs.scalar(get, P.STREAM, False):
            for piece in pieces:
                yield {P.TEXT_OUTPUT: codecs.text_tensor(piece, batch=True)}
        else:
            yield {P.TEXT_OUTPUT: codecs.text_tensor("".join(pieces), batch=True)}
