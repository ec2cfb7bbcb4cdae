"""translate: thin Triton glue over livetranslate.translate.Translator (BLS -> llm)."""

from livetranslate import protocol as P
from livetranslate.models import llm_choice
from livetranslate.translate import Translator
from livetranslate.triton import codecs, glue
from livetranslate.triton.bls import TritonLlm


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        choice = llm_choice(params["llm_model"], params.get("prompt_family", ""))
        self.translator = Translator(TritonLlm().generate, choice.prompt_family)

    def execute(self, requests):
        return glue.respond_each(requests, self._translate, P.TRANSLATE)

    def _translate(self, request):
        asked = codecs.text_request_from(glue.inputs(request))
        return codecs.translation_to_tensors(
            self.translator.translate(asked.text, asked.source, asked.target, asked.context, asked.glossary))
