"""The one module that talks `triton_python_backend_utils`: tensors in and out of
requests, model parameters, and BLS calls from `pipeline` to the other stages.

Only imported inside Triton's Python backend stub.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import threading
import time
from typing import Callable, Iterable, TypeVar

import numpy as np
import triton_python_backend_utils as pb_utils

from livetranslate import protocol as P
from livetranslate.asr import AsrRequest, Transcription
from livetranslate.llm import GenerationRequest
from livetranslate.protocol import Event
from livetranslate.vad import Segment, unpack
from livetranslate.window import Enhanced, Piece
from livetranslate.window import unpack as unpack_enhanced


def parameters(args: dict) -> dict[str, str]:
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def get(request, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def text_tensor(value: str, batch: bool = False) -> np.ndarray:
    array = np.array([value.encode("utf-8")], dtype=np.object_)
    return array[None, :] if batch else array


def scalar(request, name: str, default=None):
    value = get(request, name)
    return default if value is None or value.size == 0 else value.reshape(-1)[0].item()


def text(request, name: str, default: str = "") -> str:
    return P.decode_text(get(request, name), default)


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


# --- who may call ---------------------------------------------------------------------
def _internal_token() -> str:
    return os.environ.get(P.INTERNAL_TOKEN_ENV, "")


def internal_parameters() -> dict[str, str]:
    """What every BLS call of ours carries: the server's own token."""
    return {P.INTERNAL_PARAMETER: _internal_token()}


def check_internal(request, model: str) -> None:
    """Internal models answer only the server's own BLS calls (the token, random per start,
    is in the server's environment and never leaves it)."""
    token = _internal_token()
    try:
        sent = json.loads(request.parameters() or "{}").get(P.INTERNAL_PARAMETER, "")
    except (ValueError, AttributeError):
        sent = ""
    if not token:
        raise P.ProtocolError(f"model '{model}' is internal and this server has no internal token: "
                              f"start it with `livetranslate serve`")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), token.encode()):
        raise P.ProtocolError(f"model '{model}' is internal to the server: clients stream to "
                              f"'{P.PIPELINE}' and read sessions from '{P.SESSIONS}'")


def respond_each(requests, answer: Callable[[object], dict[str, np.ndarray]], stage: str,
                 internal: bool = True) -> list:
    """One plain response per request: `answer(request)`'s tensors, or an error response
    naming the stage. One bad request never takes the others in the batch down. An
    internal stage refuses requests from outside the server."""
    responses = []
    for request in requests:
        try:
            if internal:
                check_internal(request, stage)
            responses.append(response(answer(request)))
        except Exception as exc:
            responses.append(error_response(f"{stage}: {exc}"))
    return responses


def respond_decoupled(request, produce: Callable[[], Iterable[dict[str, np.ndarray]]], stage: str) -> None:
    """Sends each tensor dict `produce()` yields as one response, then the final flag. A
    failure becomes one error response that carries the final flag itself: a BLS caller
    stops reading at an error, so nothing may follow it."""
    sender = request.get_response_sender()
    try:
        for tensors in produce():
            sender.send(response(tensors))
    except Exception as exc:
        sender.send(error_response(f"{stage}: {exc}"), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return
    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


class DecoupledReply:
    """One decoupled request's response channel: events, then the final flag."""

    def __init__(self, request):
        self._request = request
        self._sender = request.get_response_sender()
        self.closed = False
        # several workers answer on one request (transcript, partial, translation): one
        # send at a time, and nothing after the final flag
        self._lock = threading.Lock()

    def is_cancelled(self) -> bool:
        return self._request.is_cancelled()

    def send(self, event: Event) -> None:
        with self._lock:
            if not self.closed:
                self._sender.send(response(event.to_tensors()))

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


class StageError(RuntimeError):
    pass


def _decoupled(request, names: Iterable[str]) -> list[dict[str, np.ndarray]]:
    """All non-empty responses of a BLS call to a decoupled model. Always reads to the
    final marker: an unfinished response iterator keeps the request alive, and Triton then
    cannot unload the calling model on shutdown."""
    names = list(names)
    results = []
    for result in request.exec(decoupled=True):
        # An error response is the last one (models send it with the final flag):
        # iterating further would wait forever.
        out = _outputs(result, names)
        if out:
            results.append(out)
    return results


class StageHealer:
    """A stage whose stub process died (killed, out of memory) stays READY in Triton 2.51
    and fails every request with "Stub process '<model>_0_0' is not healthy". The first
    such error reloads that model (Triton starts a new stub); the calls meanwhile fail."""

    UNHEALTHY = re.compile(r"Stub process '((\w+?)_\d+_\d+)' is not healthy")

    def __init__(self, min_interval_s: float = 10.0):
        self.min_interval_s = min_interval_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def saw(self, message: str) -> None:
        import time

        match = self.UNHEALTHY.search(message)
        if match is None or stub_alive(match.group(1)):
            return  # a busy stub misses Triton's health check too: only a dead one is reloaded
        model = match.group(2)
        with self._lock:
            if time.monotonic() - self._last.get(model, -1e9) < self.min_interval_s:
                return
            self._last[model] = time.monotonic()
        threading.Thread(target=self._reload, args=(model,), name=f"reload-{model}", daemon=True).start()

    @staticmethod
    def _reload(model: str) -> None:
        try:  # a plain load of a loaded model with an unchanged config keeps the dead stub
            pb_utils.unload_model(model_name=model)
            pb_utils.load_model(model_name=model)
            pb_utils.Logger.log_warn(f"livetranslate: reloaded {model}: its stub process had died")
        except Exception as exc:
            pb_utils.Logger.log_error(f"livetranslate: reloading {model} after its stub died failed: {exc}")


def stub_alive(instance: str) -> bool:
    """Whether this server still has a live (not zombie) stub process for a model instance
    such as `whisper_0_0`. Stubs are started as `triton_python_backend_stub <model.py> <shm>
    <size> <growth> <tritonserver pid> <backend dir> <...> <instance> <...>`."""
    server = str(os.getppid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (args and args[0].endswith(b"triton_python_backend_stub") and instance.encode() in args
                and server.encode() in args and state != "Z"):
            return True
    return False


HEALER = StageHealer()

T = TypeVar("T")


def retry_unhealthy(model: str, call: Callable[[], T], attempts: int = 3, ready_within_s: float = 30.0) -> T:
    """A call to a stateless stage, asked again when Triton answers that the stage's own stub
    "is not healthy". Triton says that of a live stub that missed one 1 s heartbeat on a
    starved CPU as well as of a dead one: a live one is asked again at once, a dead one once
    HEALER's reload has started a new stub. Stateful stages (vad, enhance) are never retried:
    the failed request may have been applied."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except StageError as exc:
            match = StageHealer.UNHEALTHY.search(str(exc))
            if match is None or match.group(2) != model or attempt == attempts:
                raise
            pb_utils.Logger.log_warn(f"livetranslate: {model} answered 'not healthy', asking again: {exc}")
            deadline = time.monotonic() + ready_within_s
            while not stub_alive(match.group(1)) and time.monotonic() < deadline:
                time.sleep(0.2)
            while not _ready(model) and time.monotonic() < deadline:
                time.sleep(0.2)
    raise AssertionError("unreachable")


def _ready(model: str) -> bool:
    try:
        return bool(pb_utils.is_model_ready(model_name=model))
    except Exception:
        return False


def _outputs(result, names: Iterable[str]) -> dict[str, np.ndarray]:
    if result.has_error():
        message = result.error().message()
        HEALER.saw(message)
        raise StageError(message)
    out = {}
    for name in names:
        tensor = pb_utils.get_output_tensor_by_name(result, name)
        if tensor is not None:
            out[name] = tensor.as_numpy()
    return out


def _tensors(tensors: dict[str, np.ndarray]) -> list:
    return [pb_utils.Tensor(name, value) for name, value in tensors.items()]


class TritonLlm:
    """`llm` through BLS, with the TensorRT-LLM ensemble's I/O (batch dimension included)."""

    def _request(self, prompt: str, max_tokens: int, extra: dict, outputs: list[str]):
        tensors = {
            P.TEXT_INPUT: text_tensor(prompt, batch=True),
            P.MAX_TOKENS: np.array([[max_tokens]], dtype=np.int32),
            **extra,
        }
        return pb_utils.InferenceRequest(model_name=P.LLM, inputs=_tensors(tensors), requested_output_names=outputs,
                                         parameters=internal_parameters())

    def generate(self, request: GenerationRequest) -> str:
        extra = {
            P.TEMPERATURE: np.array([[request.temperature]], dtype=np.float32),
            P.TOP_K: np.array([[request.top_k]], dtype=np.int32),
            P.STREAM: np.array([[False]], dtype=bool),
        }
        if request.stop:
            extra[P.STOP_WORDS] = np.array([[w.encode() for w in request.stop]], dtype=np.object_)
        outs = retry_unhealthy(P.LLM, lambda: _decoupled(
            self._request(request.prompt, request.max_tokens, extra, [P.TEXT_OUTPUT]), [P.TEXT_OUTPUT]))
        return "".join(P.decode_text(out[P.TEXT_OUTPUT]) for out in outs if P.TEXT_OUTPUT in out)

    def yes_probability(self, prompt: str) -> float:
        extra = {P.RETURN_YES_PROBABILITY: np.array([[True]], dtype=bool)}
        outs = retry_unhealthy(P.LLM, lambda: _decoupled(
            self._request(prompt, 1, extra, [P.TEXT_OUTPUT, P.YES_PROBABILITY]), [P.YES_PROBABILITY]))
        for out in outs:
            if P.YES_PROBABILITY in out:
                return float(out[P.YES_PROBABILITY].reshape(-1)[0])
        raise StageError("llm returned no yes_probability")


class TritonStages:
    """How `pipeline` reaches `vad` and `whisper`: BLS calls inside the same server."""

    VAD_OUTPUTS = (P.SEGMENT_AUDIO, P.START_SAMPLE, P.END_SAMPLE, P.SPEECH_END_SAMPLE)
    WHISPER_OUTPUTS = (P.TEXT, P.LANGUAGE, P.NO_SPEECH_PROB, P.AVG_LOGPROB, P.COMPRESSION_RATIO)

    def __init__(self):
        self._partial_model = P.WHISPER_PARTIAL  # until Triton says it has none

    def vad(self, stream_id: int, audio: np.ndarray, start: bool, end: bool) -> list[Segment]:
        flags = (P.FLAG_SEQUENCE_START if start else 0) | (P.FLAG_SEQUENCE_END if end else 0)
        request = pb_utils.InferenceRequest(
            model_name=P.VAD,
            inputs=[pb_utils.Tensor(P.AUDIO, np.ascontiguousarray(audio, dtype=np.float32))],
            requested_output_names=list(self.VAD_OUTPUTS),
            correlation_id=stream_id,
            flags=flags,
            parameters=internal_parameters(),
        )
        # the last entry may mark the utterance still open (END_SAMPLE = OPEN_SEGMENT_END)
        return unpack(_outputs(request.exec(), self.VAD_OUTPUTS))

    def whisper(self, request: AsrRequest, partial: bool = False) -> Transcription:
        if not partial or self._partial_model == P.WHISPER:
            return self._whisper(P.WHISPER, request)
        try:
            return self._whisper(self._partial_model, request)
        except StageError as exc:
            if P.WHISPER_PARTIAL not in str(exc) or not re.search(r"not ready|unknown model|not found", str(exc)):
                raise
            # the gpu profile does not load whisper_partial: partials share `whisper` there
            self._partial_model = P.WHISPER
            return self._whisper(P.WHISPER, request)

    def _whisper(self, model: str, request: AsrRequest) -> Transcription:
        def call() -> dict[str, np.ndarray]:
            bls = pb_utils.InferenceRequest(
                model_name=model,
                inputs=[
                    pb_utils.Tensor(P.AUDIO, request.audio.astype(np.float32)[None, :]),
                    pb_utils.Tensor(P.LANGUAGE, np.array([[request.language.encode()]], dtype=np.object_)),
                    pb_utils.Tensor(P.PROMPT, np.array([[request.prompt.encode("utf-8")]], dtype=np.object_)),
                    pb_utils.Tensor(P.PREFIX, np.array([[request.prefix.encode("utf-8")]], dtype=np.object_)),
                    pb_utils.Tensor(P.BEAM_SIZE, np.array([[request.beam_size]], dtype=np.int32)),
                ],
                requested_output_names=list(self.WHISPER_OUTPUTS),
                parameters=internal_parameters(),
            )
            return _outputs(bls.exec(), self.WHISPER_OUTPUTS)

        return transcription_from_tensors(retry_unhealthy(model, call))

    def _call(self, model: str, tensors: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """One request to a stateless stage, asked again while its stub is 'not healthy'."""
        def call() -> dict[str, np.ndarray]:
            bls = pb_utils.InferenceRequest(model_name=model, inputs=_tensors(tensors),
                                            requested_output_names=outputs, parameters=internal_parameters())
            return _outputs(bls.exec(), outputs)

        return retry_unhealthy(model, call)

    def translate(self, text: str, source: str, target: str, context: str = "") -> str:
        tensors = {P.TEXT: text_tensor(text), P.SOURCE_LANGUAGE: text_tensor(source),
                   P.TARGET_LANGUAGE: text_tensor(target), P.CONTEXT: text_tensor(context)}
        return P.decode_text(self._call(P.TRANSLATE, tensors, [P.TRANSLATION])[P.TRANSLATION])

    def is_complete(self, text: str, source: str) -> bool:
        tensors = {P.TEXT: text_tensor(text), P.SOURCE_LANGUAGE: text_tensor(source)}
        out = self._call(P.COMPLETENESS, tensors, [P.COMPLETE, P.PROBABILITY])
        return bool(out[P.COMPLETE].reshape(-1)[0])

    ENHANCE_OUTPUTS = (P.TEXT, P.FIRST_SEGMENT_ID, P.SEGMENT_ID, P.START_S, P.END_S)

    def enhance(self, stream_id: int, piece: Piece | None, source: str, target: str,
                start: bool, end: bool, check_complete: bool = True) -> list[Enhanced]:
        piece = piece or Piece(-1, "", 0.0, 0.0)
        tensors = {
            P.TEXT: text_tensor(piece.text),
            P.SEGMENT_ID: np.array([piece.segment_id], np.int64),
            P.START_S: np.array([piece.start_s], np.float32),
            P.END_S: np.array([piece.end_s], np.float32),
            P.SOURCE_LANGUAGE: text_tensor(source),
            P.TARGET_LANGUAGE: text_tensor(target),
            P.CHECK_COMPLETE: np.array([check_complete], dtype=bool),
        }
        flags = (P.FLAG_SEQUENCE_START if start else 0) | (P.FLAG_SEQUENCE_END if end else 0)
        bls = pb_utils.InferenceRequest(model_name=P.ENHANCE, inputs=_tensors(tensors),
                                        requested_output_names=list(self.ENHANCE_OUTPUTS),
                                        correlation_id=stream_id, flags=flags, parameters=internal_parameters())
        return unpack_enhanced(_outputs(bls.exec(), self.ENHANCE_OUTPUTS))


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
    beam_size = int(scalar(request, P.BEAM_SIZE, 0))
    if not 0 <= beam_size <= P.MAX_BEAM_SIZE:
        raise P.ProtocolError(f"BEAM_SIZE must be 0 (the default) to {P.MAX_BEAM_SIZE}, got {beam_size}")
    return AsrRequest(
        audio=np.ascontiguousarray(audio.reshape(-1), dtype=np.float32),
        language=P.decode_text(get(request, P.LANGUAGE)).strip().replace(P.AUTO_LANGUAGE, ""),
        prompt=P.decode_text(get(request, P.PROMPT)),
        prefix=P.decode_text(get(request, P.PREFIX)),
        beam_size=beam_size,
    )
