"""translate: thin Triton glue over livetranslate.translation.Translator (BLS -> llm)."""

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.models import llm_choice
from livetranslate.translation import Translator


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        choice = llm_choice(params["llm_model"], params.get("prompt_family", ""))
        self.translator = Translator(triton.TritonLlm().generate, choice.prompt_family)

    def execute(self, requests):
        return triton.respond_each(requests, self._translate, "translate")

    def _translate(self, request):
        translation = self.translator.translate(
            triton.text(request, P.TEXT),
            triton.text(request, P.SOURCE_LANGUAGE, P.DEFAULT_SOURCE_LANGUAGE),
            triton.text(request, P.TARGET_LANGUAGE, P.DEFAULT_TARGET_LANGUAGE),
            triton.text(request, P.CONTEXT),
        )
        return {P.TRANSLATION: triton.text_tensor(translation)}
