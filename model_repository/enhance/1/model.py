"""enhance: thin Triton glue over livetranslate.stages.enhance.Enhancer, one per sequence (= stream)."""

from typing import Any

from livetranslate import protocol as P
from livetranslate.stages.enhance import Enhancer, WindowOptions
from livetranslate.stages.state import StreamTable
from livetranslate.triton import codecs, glue
from livetranslate.triton.bls import TritonStages


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        self.options = WindowOptions(
            max_words=int(params["max_words"]),
            max_seconds=float(params["max_seconds"]),
            pause_s=float(params["pause_s"]),
            min_words=int(params["min_words"]),
            history=int(params["history"]),
            similarity_threshold=float(params["similarity_threshold"]),
            use_context=params.get("use_context", "false").lower() == "true",
            sentence_end_closes=params.get("sentence_end_closes", "true").lower() == "true",
            context_words=int(params.get("context_words", "40")),
        )
        self.stages = TritonStages()
        # Triton drops an idle sequence silently: its window goes after as long
        self.streams: StreamTable[Any] = StreamTable(glue.sequence_idle_s(args))

    def execute(self, requests):
        self.streams.expire()
        return glue.respond_each(requests, self._enhance, P.ENHANCE)

    def _enhance(self, request):
        stream_id, start, end = glue.sequence_flags(request)
        asked = codecs.enhance_request_from(glue.inputs(request))
        if start:
            source, target, glossary = asked.source, asked.target, asked.glossary
            self.streams.put(
                stream_id,
                Enhancer(
                    self.options,
                    translate=lambda text, context: self.stages.translate(text, source, target, context, glossary),
                    is_complete=lambda text: self.stages.is_complete(text, source),
                ),
            )
        enhancer = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
        if enhancer is None:
            raise P.ProtocolError(f"no open enhance stream {stream_id}")
        out = enhancer.step(asked.step, asked.check_complete, asked.translate_window)
        if end and asked.flush:
            out += enhancer.flush()
        return codecs.enhanced_to_tensors(out)
