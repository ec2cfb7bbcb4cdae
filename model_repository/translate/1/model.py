"""translate: thin Triton glue over livetranslate.stages.translate.Translator (BLS -> llm).
Decoupled and answered from worker threads, so the speaker's urgent translation never waits
in this model behind an enhanced window's (the llm's lanes order the work); with INTERIM
the text so far goes out as it is generated, then the translation."""

import concurrent.futures
import functools
from typing import Any

from livetranslate import protocol as P
from livetranslate.stages.summary import Summarizer
from livetranslate.stages.translate import Translator
from livetranslate.triton import codecs, glue
from livetranslate.triton.bls import TritonLlm
from livetranslate.weights.catalog import fast_llm_choice, llm_choice


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        choice = llm_choice(params["llm_model"], params.get("prompt_family", ""))
        generate = TritonLlm().generate
        self.translator = Translator(generate, choice.prompt_family)
        self.summarizer = Summarizer(generate, choice.prompt_family)
        fast = fast_llm_choice(params.get("fast_llm_model", ""), choice)
        self.fast_translator = Translator(generate, fast.prompt_family) if fast else None
        # the speaker's translations on threads of their own: calls waiting in the llm's
        # background lane never hold up an urgent one here
        self.workers = {
            urgent: concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="translate")
            for urgent in (True, False)
        }

    def execute(self, requests):
        for request in requests:
            try:
                urgent = codecs.translate_flags_from(glue.inputs(request)).urgent
            except Exception:  # a malformed request: its answer says why
                urgent = False
            self.workers[urgent].submit(
                glue.respond_streaming, request, functools.partial(self._translate, request), P.TRANSLATE
            )
        return None

    def finalize(self):
        for pool in self.workers.values():
            pool.shutdown(wait=True)

    def _translate(self, request, send):
        get = glue.inputs(request)
        asked, flags = codecs.text_request_from(get), codecs.translate_flags_from(get)
        if flags.summary:  # a piece of a meeting to summarize: background work, whoever asks
            answer = self.summarizer.piece(asked.text, asked.source, asked.target, lane="background")
            return codecs.translation_to_tensors(answer)
        fast = flags.fast and self.fast_translator is not None
        translator = self.fast_translator if fast and self.fast_translator is not None else self.translator
        options: dict[str, Any] = {"lane": "fast" if fast else "urgent"} if flags.urgent else {}
        if flags.interim:
            options["on_interim"] = lambda text: send(codecs.translation_to_tensors(text, interim=True, fast=fast))
        text = translator.translate(asked.text, asked.source, asked.target, asked.context, asked.glossary, **options)
        return codecs.translation_to_tensors(text, fast=fast)
