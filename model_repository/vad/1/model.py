"""vad: thin Triton glue over livetranslate.vad.Segmenter, one per sequence."""

import numpy as np

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.state import StreamTable
from livetranslate.vad import Segmenter, VadOptions, pack


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        self.options = VadOptions(
            mode=int(params["mode"]),
            frame_ms=int(params["frame_ms"]),
            padding_ms=int(params["padding_ms"]),
            max_utterance_s=float(params["max_utterance_s"]),
        )
        self.streams = StreamTable(float(params["ttl_s"]))

    def execute(self, requests):
        self.streams.expire()
        return triton.respond_each(requests, lambda request: pack(self._segments(request)), "vad")

    def _segments(self, request):
        stream_id, start, end = triton.sequence_flags(request)
        if start:
            self.streams.put(stream_id, Segmenter(self.options))
        segmenter = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
        if segmenter is None:
            raise P.ProtocolError(f"no open vad stream {stream_id}")
        audio = triton.get(request, P.AUDIO)
        return segmenter.process(audio.reshape(-1) if audio is not None else np.zeros(0, np.float32), end)
