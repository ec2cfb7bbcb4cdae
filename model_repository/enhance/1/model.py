"""enhance: thin Triton glue over livetranslate.window.Enhancer, one per sequence."""

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.state import StreamTable
from livetranslate.window import Enhancer, Piece, WindowOptions, pack


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        self.options = WindowOptions(
            max_words=int(params["max_words"]),
            max_seconds=float(params["max_seconds"]),
            pause_s=float(params["pause_s"]),
            min_words=int(params["min_words"]),
            history=int(params["history"]),
            similarity_threshold=float(params["similarity_threshold"]),
            use_context=params.get("use_context", "false").lower() == "true",
        )
        self.stages = triton.TritonStages()
        self.streams = StreamTable(float(params["ttl_s"]))

    def execute(self, requests):
        self.streams.expire()
        return triton.respond_each(requests, lambda request: pack(self._enhance(request)), "enhance")

    def _enhance(self, request):
        stream_id, start, end = triton.sequence_flags(request)
        source = triton.text(request, P.SOURCE_LANGUAGE, P.DEFAULT_SOURCE_LANGUAGE)
        target = triton.text(request, P.TARGET_LANGUAGE, P.DEFAULT_TARGET_LANGUAGE)
        if start:
            self.streams.put(stream_id, Enhancer(
                self.options,
                translate=lambda text, context: self.stages.translate(text, source, target, context),
                is_complete=lambda text: self.stages.is_complete(text, source),
            ))
        enhancer = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
        if enhancer is None:
            raise P.ProtocolError(f"no open enhance stream {stream_id}")
        piece = Piece(int(triton.scalar(request, P.SEGMENT_ID)), triton.text(request, P.TEXT),
                      float(triton.scalar(request, P.START_S)), float(triton.scalar(request, P.END_S)))
        check = bool(triton.scalar(request, P.CHECK_COMPLETE, True))
        return enhancer.add(piece, check_complete=check) + (enhancer.flush() if end else [])
