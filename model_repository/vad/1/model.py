"""vad: thin Triton glue over livetranslate.stages.vad.Segmenter, one per sequence (= stream)."""

from typing import Any

from livetranslate import protocol as P
from livetranslate.stages.state import StreamTable
from livetranslate.stages.vad import Segmenter, VadOptions
from livetranslate.triton import codecs, glue


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        self.options = VadOptions(
            mode=int(params["mode"]),
            frame_ms=int(params["frame_ms"]),
            padding_ms=int(params["padding_ms"]),
            max_utterance_s=float(params["max_utterance_s"]),
        )
        # Triton drops an idle sequence silently: its segmenter goes after as long
        self.streams: StreamTable[Any] = StreamTable(glue.sequence_idle_s(args))

    def execute(self, requests):
        self.streams.expire()
        return glue.respond_each(requests, self._boundaries, P.VAD)

    def _boundaries(self, request):
        stream_id, start, end = glue.sequence_flags(request)
        if start:
            self.streams.put(stream_id, Segmenter(self.options))
        segmenter = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
        if segmenter is None:
            raise P.ProtocolError(f"no open vad stream {stream_id}")
        audio = codecs.vad_audio(glue.inputs(request))
        return codecs.boundaries_to_tensors(segmenter.process(audio, end))
