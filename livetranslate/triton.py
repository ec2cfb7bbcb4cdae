"""The one module that talks `triton_python_backend_utils`: tensors in and out of
requests, model parameters, and BLS calls from `pipeline` to the other stages.

Only imported inside Triton's Python backend stub.
"""

from __future__ import annotations

import json
from typing import Iterable

import numpy as np
import triton_python_backend_utils as pb_utils

from livetranslate import protocol as P
from livetranslate.asr import AsrRequest, Transcription
from livetranslate.protocol import Event
from livetranslate.vad import Segment


def parameters(args: dict) -> dict[str, str]:
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def get(request, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def response(tensors: dict[str, np.ndarray]) -> "pb_utils.InferenceResponse":
    return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(k, v) for k, v in tensors.items()])


def error_response(message: str) -> "pb_utils.InferenceResponse":
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


def sequence_flags(request) -> tuple[int, bool, bool]:
    """(correlation id, start, end) from the sequence batcher's control inputs."""
    corrid = get(request, "CORRID")
    start, end = get(request, "START"), get(request, "END")
    return (
        int(corrid.reshape(-1)[0]) if corrid is not None else int(request.correlation_id()),
        bool(start is not None and start.reshape(-1)[0]),
        bool(end is not None and end.reshape(-1)[0]),
    )


class DecoupledReply:
    """One decoupled request's response channel: events, then the final flag."""

    def __init__(self, request):
        self._sender = request.get_response_sender()
        self.closed = False

    def send(self, event: Event) -> None:
        if not self.closed:
            self._sender.send(response(event.to_tensors()))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


class StageError(RuntimeError):
    pass


def _outputs(result, names: Iterable[str]) -> dict[str, np.ndarray]:
    if result.has_error():
        raise StageError(result.error().message())
    out = {}
    for name in names:
        tensor = pb_utils.get_output_tensor_by_name(result, name)
        if tensor is not None:
            out[name] = tensor.as_numpy()
    return out


class TritonStages:
    """How `pipeline` reaches `vad` and `whisper`: BLS calls inside the same server."""

    VAD_OUTPUTS = (P.SEGMENT_AUDIO, P.START_SAMPLE, P.END_SAMPLE, P.SPEECH_END_SAMPLE)
    WHISPER_OUTPUTS = (P.TEXT, P.LANGUAGE, P.NO_SPEECH_PROB, P.AVG_LOGPROB, P.COMPRESSION_RATIO)

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]:
        flags = (P.FLAG_SEQUENCE_START if start else 0) | (P.FLAG_SEQUENCE_END if end else 0)
        request = pb_utils.InferenceRequest(
            model_name=P.VAD,
            inputs=[pb_utils.Tensor(P.AUDIO, np.ascontiguousarray(audio, dtype=np.float32))],
            requested_output_names=list(self.VAD_OUTPUTS),
            correlation_id=stream_id,
            flags=flags,
        )
        segments = []
        for result in request.exec(decoupled=True):
            out = _outputs(result, self.VAD_OUTPUTS)
            if not out:  # the empty final marker
                continue
            segments.append(
                Segment(
                    audio=out[P.SEGMENT_AUDIO],
                    start_sample=int(out[P.START_SAMPLE][0]),
                    end_sample=int(out[P.END_SAMPLE][0]),
                    speech_end_sample=int(out[P.SPEECH_END_SAMPLE][0]),
                )
            )
        return segments

    def whisper(self, request: AsrRequest) -> Transcription:
        bls = pb_utils.InferenceRequest(
            model_name=P.WHISPER,
            inputs=[
                pb_utils.Tensor(P.AUDIO, request.audio.astype(np.float32)[None, :]),
                pb_utils.Tensor(P.LANGUAGE, np.array([[request.language.encode()]], dtype=np.object_)),
                pb_utils.Tensor(P.PROMPT, np.array([[request.prompt.encode("utf-8")]], dtype=np.object_)),
            ],
            requested_output_names=list(self.WHISPER_OUTPUTS),
        )
        out = _outputs(bls.exec(), self.WHISPER_OUTPUTS)
        return transcription_from_tensors(out)


def transcription_to_tensors(result: Transcription) -> dict[str, np.ndarray]:
    return {
        P.TEXT: np.array([[result.text.encode("utf-8")]], dtype=np.object_),
        P.LANGUAGE: np.array([[result.language.encode()]], dtype=np.object_),
        P.NO_SPEECH_PROB: np.array([[result.no_speech_prob]], dtype=np.float32),
        P.AVG_LOGPROB: np.array([[result.avg_logprob]], dtype=np.float32),
        P.COMPRESSION_RATIO: np.array([[result.compression_ratio]], dtype=np.float32),
    }


def transcription_from_tensors(out: dict[str, np.ndarray]) -> Transcription:
    return Transcription(
        text=P.decode_text(out[P.TEXT]),
        language=P.decode_text(out[P.LANGUAGE]),
        no_speech_prob=float(out[P.NO_SPEECH_PROB].reshape(-1)[0]),
        avg_logprob=float(out[P.AVG_LOGPROB].reshape(-1)[0]),
        compression_ratio=float(out[P.COMPRESSION_RATIO].reshape(-1)[0]),
    )


def asr_request_from(request) -> AsrRequest:
    audio = get(request, P.AUDIO)
    if audio is None or audio.size == 0:
        raise P.ProtocolError("AUDIO is missing or empty")
    return AsrRequest(
        audio=np.ascontiguousarray(audio.reshape(-1), dtype=np.float32),
        language=P.decode_text(get(request, P.LANGUAGE)).strip().replace(P.AUTO_LANGUAGE, ""),
        prompt=P.decode_text(get(request, P.PROMPT)),
    )
