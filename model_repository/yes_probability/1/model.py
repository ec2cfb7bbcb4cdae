"""yes_probability (gpu profile, a step of the `llm` ensemble): thin Triton glue over
livetranslate.stages.llm.tensorrt_llm."""

import numpy as np

from livetranslate import protocol as P
from livetranslate.stages.llm.tensorrt_llm import YesNoScorer
from livetranslate.triton import glue


class TritonPythonModel:
    def initialize(self, args):
        self.scorer = YesNoScorer(glue.parameters(args)["tokenizer_dir"])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                glue.check_internal(request, "yes_probability")
                p = self.scorer(glue.get(request, P.GENERATION_LOGITS))
                responses.append(glue.response({P.YES_PROBABILITY: np.array([[p]], dtype=np.float32)}))
            except Exception as exc:
                responses.append(glue.error_response(f"yes_probability: {exc}"))
        return responses
