"""What a model.py needs from Triton: its parameters, its requests' inputs, responses (one
per request, or a decoupled stream of them), sequence flags, and who may call an internal
model. Only imported inside Triton's Python backend stub."""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Iterable
from functools import partial

import numpy as np
import triton_python_backend_utils as pb_utils

from livetranslate import deadline, settings
from livetranslate import protocol as P
from livetranslate.protocol import Event
from livetranslate.triton import codecs


def parameters(args: dict) -> dict[str, str]:
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def sequence_idle_s(args: dict) -> float:
    """The model's `max_sequence_idle_microseconds` in seconds: Triton drops a sequence idle
    that long without telling the model, so the model frees its state after as long."""
    config = json.loads(args["model_config"])
    return int(config["sequence_batching"]["max_sequence_idle_microseconds"]) / 1e6


def get(request, name: str) -> np.ndarray | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def inputs(request) -> codecs.Get:
    """The request's inputs for a codec: name -> numpy array, or None when absent."""
    return partial(get, request)


def response(tensors: dict[str, np.ndarray]) -> pb_utils.InferenceResponse:
    return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(k, v) for k, v in tensors.items()])


def error_response(message: str) -> pb_utils.InferenceResponse:
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
    return settings.get(P.INTERNAL_TOKEN_ENV) or ""


def internal_parameters() -> dict[str, str]:
    """What every BLS call of ours carries: the server's own token."""
    return {P.INTERNAL_PARAMETER: _internal_token()}


def request_parameter(request, name: str, default=""):
    """One of the request's parameters (a BLS call's `parameters`), or `default`."""
    try:
        return json.loads(request.parameters() or "{}").get(name, default)
    except (ValueError, AttributeError):
        return default


def client_key(request) -> str:
    """The client key a request carries: Triton forwards its header as a request parameter
    when the server has named client keys (ServerOptions.keys_file)."""
    for name in (P.GRPC_API_KEY_HEADER, P.API_KEY_HEADER):
        value = request_parameter(request, name)
        if isinstance(value, str) and value:
            return value
    return ""


def check_internal(request, model: str) -> None:
    """Internal models answer only the server's own BLS calls (the token, random per start,
    is in the server's environment and never leaves it)."""
    token = _internal_token()
    sent = request_parameter(request, P.INTERNAL_PARAMETER)
    if not token:
        raise P.ProtocolError(
            f"model '{model}' is internal and this server has no internal token: start it with `livetranslate serve`"
        )
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), token.encode()):
        raise P.ProtocolError(
            f"model '{model}' is internal to the server: clients stream to "
            f"'{P.PIPELINE}' and read sessions from '{P.SESSIONS}'"
        )


def request_timeout_s(request) -> float | None:
    """The request's timeout (what its BLS caller still waits), or None when it has none."""
    try:
        micros = int(request.timeout())
    except (AttributeError, TypeError, ValueError):
        return None
    return micros / 1e6 if micros > 0 else None


def within_request(request):
    """Work done for the request within what its caller still waits (livetranslate.deadline):
    the BLS calls made meanwhile carry the rest on, and work it was queued behind is dropped."""
    return deadline.within(request_timeout_s(request))


def is_internal(request) -> bool:
    """Whether the request carries the server's own token (a BLS call, or the launcher)."""
    try:
        check_internal(request, P.PIPELINE)
        return True
    except P.ProtocolError:
        return False


def respond_each(
    requests, answer: Callable[[object], dict[str, np.ndarray]], stage: str, internal: bool = True
) -> list:
    """One plain response per request: `answer(request)`'s tensors, or an error response
    naming the stage. One bad request never takes the others in the batch down. An
    internal stage refuses requests from outside the server."""
    responses = []
    for request in requests:
        try:
            if internal:
                check_internal(request, stage)
            with within_request(request):
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
        with within_request(request):
            deadline.check(stage)
            for tensors in produce():
                sender.send(response(tensors))
    except Exception as exc:
        sender.send(error_response(f"{stage}: {exc}"), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return
    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


def respond_streaming(
    request, answer: Callable[[Callable[[dict[str, np.ndarray]], None]], dict[str, np.ndarray]], stage: str
) -> None:
    """`answer(send)` may `send` interim tensors while it works; what it returns goes last,
    with the final flag. A failure becomes one error response carrying the final flag."""
    sender = request.get_response_sender()
    try:
        check_internal(request, stage)
        with within_request(request):
            deadline.check(stage)
            final = answer(lambda tensors: sender.send(response(tensors)))
        last = response(final)  # inside: an answer that cannot be sent still ends the stream
    except Exception as exc:
        sender.send(error_response(f"{stage}: {exc}"), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return
    sender.send(last, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)


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
