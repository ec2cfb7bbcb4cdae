"""completeness: thin Triton glue over livetranslate.translation.CompletenessChecker."""

import numpy as np

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.models import llm_choice
from livetranslate.translation import CompletenessChecker, CompletenessThresholds


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        choice = llm_choice(params["llm_model"], params.get("prompt_family", ""))
        self.checker = CompletenessChecker(
            triton.TritonLlm().yes_probability, choice.prompt_family,
            CompletenessThresholds(*choice.completeness_thresholds),
        )

    def execute(self, requests):
        return triton.respond_each(requests, self._check, "completeness")

    def _check(self, request):
        complete, p = self.checker.check(
            triton.text(request, P.TEXT), triton.text(request, P.SOURCE_LANGUAGE, P.DEFAULT_SOURCE_LANGUAGE)
        )
        return {P.COMPLETE: np.array([complete], dtype=bool), P.PROBABILITY: np.array([p], dtype=np.float32)}
