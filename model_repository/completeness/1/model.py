"""completeness: thin Triton glue over livetranslate.stages.completeness.CompletenessChecker (BLS -> llm)."""

from livetranslate import protocol as P
from livetranslate.stages.completeness import CompletenessChecker, CompletenessThresholds
from livetranslate.triton import codecs, glue
from livetranslate.triton.bls import TritonLlm
from livetranslate.weights.catalog import llm_choice


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        choice = llm_choice(params["llm_model"], params.get("prompt_family", ""))
        self.checker = CompletenessChecker(
            TritonLlm().yes_probability,
            choice.prompt_family,
            CompletenessThresholds(*choice.completeness_thresholds),
        )

    def execute(self, requests):
        return glue.respond_each(requests, self._check, P.COMPLETENESS)

    def _check(self, request):
        asked = codecs.text_request_from(glue.inputs(request))
        return codecs.completeness_to_tensors(*self.checker.check(asked.text, asked.source))
