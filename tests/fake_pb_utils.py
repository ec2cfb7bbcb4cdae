"""A stand-in for Triton's `triton_python_backend_utils` (imported as `pb_utils`): the Triton layer
(livetranslate/triton/glue.py, bls.py, metrics.py) and the model.py files run against it without a
server. It keeps to what the Python backend does (python_backend's src/pb_stub.cc, pb_tensor.cc,
response_sender.cc, pb_response_iterator.cc, request_executor.cc, metric_family.cc):

- Tensor(name, array): numpy in, numpy out. A tensor that crosses to another model (a BLS call's
  inputs, a response's outputs) arrives as a copy, a BYTES element as `bytes` (a str one as its
  UTF-8), as Triton's shared memory hands it over; a dtype Triton has no type for is refused.
- InferenceRequest(...): Triton's arguments and checks (parameters: str keys and bool/int/str
  values; a correlation id int or str). `exec()` and `exec(decoupled=True)` reach the models a
  test scripts on the FakeTriton (`model(name, handler)`), each held to its config.pbtxt as
  Triton holds it: input names, dtypes, shapes and required inputs; decoupled or not; a sequence
  batcher's START/END/CORRID control inputs and its START rule. An unknown model, a refused
  request and a model's exception come back as error responses, never raised, as in Triton. A
  decoupled stream is read response by response; its last one carries the final flag (an empty
  response where the model sent the flag alone). The calls are recorded (`calls`).
- A request as a model gets it (`make_request`, or what a scripted model's handler receives):
  inputs(), parameters() (JSON), correlation_id(), timeout(), flags(), is_cancelled(),
  get_response_sender(). The sender keeps Triton's rules (flags 0 or FINAL, a response with
  flags 0, nothing after FINAL, one response from a model that is not decoupled) and records
  what was sent.
- MetricFamily / Metric: the values live in the fake server, as in Triton, per family and label
  set (`series`); counters only go up, gauges are set, histograms observe (buckets required);
  a family dropped while its metrics live is recorded in `metric_errors`, and they fail.
- Logger, load_model, unload_model, is_model_ready: recorded (`log`, `model_control`).

`installed()` puts a fresh module into sys.modules["triton_python_backend_utils"], drops the
Triton layer's modules so that they import afresh against it, and puts everything back after.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import importlib.util
import json
import queue
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODULE = "triton_python_backend_utils"
PACKAGE = "livetranslate.triton"
LAYER = ("livetranslate.triton.glue", "livetranslate.triton.bls", "livetranslate.triton.metrics")
REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
TRITONSERVER_REQUEST_RELEASE_ALL = 1
TRITONSERVER_REQUEST_RELEASE_RESCHEDULE = 2
FINAL = TRITONSERVER_RESPONSE_COMPLETE_FINAL

_TRITON_TYPES = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}
_NUMPY_TYPES = {name: dtype for dtype, name in _TRITON_TYPES.items()} | {"BYTES": np.dtype(np.object_)}

_current: FakeTriton | None = None


def _server() -> FakeTriton:
    if _current is None:
        raise RuntimeError("the fake triton_python_backend_utils is used outside fake_pb_utils.installed()")
    return _current


class TritonModelException(Exception):
    """What the real module raises where the stub refuses a call."""


def triton_type(dtype) -> str:
    """Triton's name of a numpy dtype (numpy_to_triton_type), as config.pbtxt writes it without TYPE_."""
    dtype = np.dtype(dtype)
    if dtype == np.object_ or dtype.type == np.bytes_:
        return "BYTES"
    if dtype not in _TRITON_TYPES:
        raise TritonModelException("NumPy dtype is not supported.")
    return _TRITON_TYPES[dtype]


class TritonError:
    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS, CANCELLED = range(8)

    def __init__(self, message: str, code: int = INTERNAL):
        if not isinstance(message, str):
            raise TypeError(f"TritonError(): message must be a str, got {type(message).__name__}")
        self._message, self._code = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code

    def __repr__(self) -> str:
        return f"TritonError({self._message!r})"


class Tensor:
    def __init__(self, name: str, array):
        if not isinstance(name, str):
            raise TypeError(f"Tensor(): name must be a str, got {type(name).__name__}")
        if name == "":
            raise TritonModelException("Tensor name cannot be an empty string.")
        array = np.asarray(array)  # pybind's py::array takes any array-like
        self._type = triton_type(array.dtype)
        self._name = name
        self._array = array if array.flags.c_contiguous else np.ascontiguousarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array

    def shape(self) -> list[int]:
        return list(self._array.shape)

    def triton_dtype(self) -> str:
        return self._type

    def is_cpu(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Tensor({self._name!r}, {self._array!r})"

    def _handed_over(self) -> Tensor:
        """The tensor as the other side gets it: a copy, BYTES elements as bytes (serialize_byte_tensor)."""
        if self._type != "BYTES":
            return Tensor(self._name, self._array.copy())
        items = [x if type(x) is bytes else str(x).encode("utf-8") for x in self._array.reshape(-1).tolist()]
        copy = np.empty(len(items), dtype=np.object_)
        copy[:] = items
        return Tensor(self._name, copy.reshape(self._array.shape))


def _parameters_json(parameters) -> str:
    if parameters is None:
        return "{}"
    if not isinstance(parameters, dict):
        raise TritonModelException(f"Expect dict, got {type(parameters)}")
    for key, value in parameters.items():
        if not isinstance(key, str):
            raise TritonModelException(f"Expect parameters keys to have type str, found type {type(key)}")
        if not isinstance(value, bool | int | str):
            raise TritonModelException(f"Expect parameters values to have type bool/int/str, found type {type(value)}")
    return json.dumps(parameters)


def _unsigned(what: str, value, bits: int) -> int:
    if isinstance(value, float) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise TypeError(f"InferenceRequest(): {what} must be an unsigned {bits}-bit int, got {value!r}")
    return value


class InferenceResponse:
    def __init__(self, output_tensors=(), error: TritonError | None = None, parameters=None):
        output_tensors = list(output_tensors)
        for tensor in output_tensors:
            if not isinstance(tensor, Tensor):
                raise TypeError(f"InferenceResponse(): output_tensors must be Tensors, got {type(tensor).__name__}")
        if error is not None and not isinstance(error, TritonError):
            raise TypeError(f"InferenceResponse(): error must be a TritonError, got {type(error).__name__}")
        self._outputs, self._error, self._parameters = output_tensors, error, _parameters_json(parameters)

    def output_tensors(self) -> list[Tensor]:
        return self._outputs

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error

    def parameters(self) -> str:
        return self._parameters

    def __repr__(self) -> str:
        return f"InferenceResponse({[t.name() for t in self._outputs]}, error={self._error!r})"

    def _handed_over(self, requested=()) -> InferenceResponse:
        """The response as its receiver gets it: copies; only the requested outputs; none with an error."""
        if self._error is not None:
            return InferenceResponse([], self._error)
        outputs = [t._handed_over() for t in self._outputs if not requested or t.name() in requested]
        return InferenceResponse(outputs, None, json.loads(self._parameters))


class InferenceResponseSender:
    """A request's response sender, with the Python backend's rules. `sent` records
    (response as handed over, or None; flags) in order."""

    def __init__(self, decoupled: bool = True, deliver: Callable[[InferenceResponse | None, int], None] | None = None):
        self.decoupled = decoupled
        self.sent: list[tuple[InferenceResponse | None, int]] = []
        self.closed = False
        self.cancelled = False
        self._deliver = deliver
        self._count = 0
        self._lock = threading.Lock()
        self._final = threading.Event()

    def send(self, response: InferenceResponse | None = None, flags: int = 0) -> None:
        if response is not None and not isinstance(response, InferenceResponse):
            raise TypeError(f"send(): response must be an InferenceResponse, got {type(response).__name__}")
        if flags not in (0, FINAL):
            raise TritonModelException("Unable to send response. Unsupported flag provided.")
        if flags == 0 and response is None:
            raise TritonModelException(
                "Inference Response object must be provided when the response flags is set to zero."
            )
        with self._lock:
            if not self.decoupled:
                if response is not None and self._count > 0:
                    raise TritonModelException(
                        "Unable to send response. Non-decoupled model cannot send more than one response."
                    )
                if response is None and self._count == 0:
                    raise TritonModelException(
                        "Unable to send response. Non-decoupled model cannot send complete final before "
                        "sending a response."
                    )
            if self.closed:
                raise TritonModelException("Unable to send response. Response sender has been closed.")
            self.closed = self.closed or flags == FINAL
            self._count += 1
            handed = None if response is None else response._handed_over()
            self.sent.append((handed, flags))
            if self._deliver is not None:
                self._deliver(handed, flags)
        if flags == FINAL:
            self._final.set()

    def is_cancelled(self) -> bool:
        return self.cancelled

    # --- for tests ------------------------------------------------------------------------
    def responses(self) -> list[InferenceResponse]:
        """The responses sent (data or error), without the flag-only final."""
        return [r for r, _ in self.sent if r is not None]

    def outputs(self) -> list[dict[str, np.ndarray]]:
        return [outputs(r) for r in self.responses()]

    def flags(self) -> list[int]:
        return [f for _, f in self.sent]

    def wait_final(self, timeout_s: float = 5.0) -> bool:
        return self._final.wait(timeout_s)


class InferenceRequest:
    def __init__(
        self,
        request_id: str = "",
        correlation_id: int | str = 0,
        inputs=None,
        requested_output_names=None,
        model_name: str | None = None,
        model_version: int = -1,
        flags: int = 0,
        timeout: int = 0,
        preferred_memory=None,
        trace=None,
        parameters=None,
    ):
        if inputs is None or requested_output_names is None or model_name is None:
            raise TypeError("InferenceRequest(): inputs, requested_output_names and model_name are required")
        inputs = list(inputs)
        for tensor in inputs:
            if not isinstance(tensor, Tensor):
                raise TypeError(f"InferenceRequest(): inputs must be Tensors, got {type(tensor).__name__}")
        if not isinstance(correlation_id, int | str):
            raise TritonModelException("Correlation ID must be integer or string")
        if isinstance(correlation_id, int):
            _unsigned("correlation_id", correlation_id, 64)
        self._request_id, self._correlation_id = request_id, correlation_id
        self._inputs = inputs
        self._requested = [str(n) for n in requested_output_names]
        self._model_name, self._model_version = model_name, model_version
        self._flags, self._timeout = _unsigned("flags", flags, 32), _unsigned("timeout", timeout, 64)
        self._parameters = _parameters_json(parameters)
        self._sender: InferenceResponseSender | None = None

    def inputs(self) -> list[Tensor]:
        return list(self._inputs)

    def request_id(self) -> str:
        return self._request_id

    def correlation_id(self) -> int | str:
        return self._correlation_id

    def flags(self) -> int:
        return self._flags

    def timeout(self) -> int:
        return self._timeout

    def parameters(self) -> str:
        return self._parameters

    def requested_output_names(self) -> list[str]:
        return list(self._requested)

    def get_response_sender(self) -> InferenceResponseSender:
        if self._sender is None:
            raise TritonModelException("Unable to get the response sender of a request this model made (BLS).")
        return self._sender

    def is_cancelled(self) -> bool:
        return self._sender is not None and self._sender.cancelled

    def exec(self, decoupled: bool = False):
        return _server()._exec(self, decoupled)

    def __repr__(self) -> str:
        return f"InferenceRequest({self._model_name!r}, {[t.name() for t in self._inputs]})"

    @property
    def sender(self) -> InferenceResponseSender:
        """For tests: the response sender of a request a model got."""
        return self.get_response_sender()


def make_request(
    inputs: dict[str, np.ndarray] | None = None,
    *,
    parameters: dict | None = None,
    correlation_id: int | str = 0,
    flags: int = 0,
    timeout: int = 0,
    decoupled: bool = True,
    requested_output_names=(),
    model_name: str = "model",
) -> InferenceRequest:
    """A request as a model gets it: its inputs handed over, and a response sender that records."""
    request = InferenceRequest(
        correlation_id=correlation_id,
        inputs=[Tensor(k, v)._handed_over() for k, v in (inputs or {}).items()],
        requested_output_names=list(requested_output_names),
        model_name=model_name,
        flags=flags,
        timeout=timeout,
        parameters=parameters,
    )
    request._sender = InferenceResponseSender(decoupled)
    return request


def get_input_tensor_by_name(inference_request, name: str) -> Tensor | None:
    for tensor in inference_request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def get_output_tensor_by_name(inference_response, name: str) -> Tensor | None:
    for tensor in inference_response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None


def outputs(response: InferenceResponse) -> dict[str, np.ndarray]:
    """For tests: a response's outputs by name."""
    return {t.name(): t.as_numpy() for t in response.output_tensors()}


def error(message: str) -> InferenceResponse:
    """For tests: an error response, as a model sends one."""
    return InferenceResponse([], TritonError(message))


class Logger:
    INFO, WARNING, ERROR, VERBOSE = "INFO", "WARNING", "ERROR", "VERBOSE"

    @staticmethod
    def log(message: str, level: str = "INFO") -> None:
        _server().log.append((level, message))

    @staticmethod
    def log_info(message: str) -> None:
        Logger.log(message, Logger.INFO)

    @staticmethod
    def log_warn(message: str) -> None:
        Logger.log(message, Logger.WARNING)

    @staticmethod
    def log_error(message: str) -> None:
        Logger.log(message, Logger.ERROR)

    @staticmethod
    def log_verbose(message: str) -> None:
        Logger.log(message, Logger.VERBOSE)


def load_model(model_name: str, config: str = "", files=None) -> None:
    server = _server()
    server.model_control.append(("load", model_name))
    if model_name not in server.models:
        raise TritonModelException(f"failed to load '{model_name}', failed to poll from model repository")
    server.models[model_name].ready = True


def unload_model(model_name: str, unload_dependents: bool = False) -> None:
    server = _server()
    server.model_control.append(("unload", model_name))
    if model_name in server.models:
        server.models[model_name].ready = False


def is_model_ready(model_name: str, model_version: str = "") -> bool:
    model = _server().models.get(model_name)
    return model is not None and model.ready


# --- custom metrics ------------------------------------------------------------------------------
class MetricKind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass
class Series:
    """One metric as Triton holds it: a family's label set and its value (or observations)."""

    family: str
    kind: MetricKind
    labels: dict[str, str]
    buckets: list[float] | None
    value: float = 0.0
    observed: list[float] = field(default_factory=list)


class Metric:
    def __init__(self, family: MetricFamily, series: Series):
        self._family = weakref.ref(family)
        self._series = series

    def _check(self, what: str, *kinds: MetricKind) -> Series:
        if self._family() is None:
            raise TritonModelException(f"Failed to {what}: the metric's MetricFamily was deleted")
        if self._series.kind not in kinds:
            raise TritonModelException(f"Failed to {what}: not supported for {self._series.kind.value} metrics")
        return self._series

    def increment(self, value: float) -> None:
        series = self._check("increment metric value", MetricKind.COUNTER, MetricKind.GAUGE)
        if series.kind == MetricKind.COUNTER and float(value) < 0:
            raise TritonModelException("Failed to increment metric value: counters cannot be decremented")
        series.value += float(value)

    def set(self, value: float) -> None:
        self._check("set metric value", MetricKind.GAUGE).value = float(value)

    def observe(self, value: float) -> None:
        self._check("observe metric value", MetricKind.HISTOGRAM).observed.append(float(value))

    def value(self) -> float:
        return self._check("get metric value", MetricKind.COUNTER, MetricKind.GAUGE).value


class MetricFamily:
    COUNTER, GAUGE, HISTOGRAM = MetricKind.COUNTER, MetricKind.GAUGE, MetricKind.HISTOGRAM

    def __init__(self, name: str, description: str, kind: MetricKind):
        if not isinstance(name, str) or not isinstance(description, str) or not isinstance(kind, MetricKind):
            raise TypeError("MetricFamily(): name and description are str, kind a MetricFamily kind")
        server = _server()
        known = server.families.get(name)
        if known is not None and known != (description, kind):
            raise TritonModelException(
                f"Error when creating MetricFamily: '{name}' exists with another description or kind"
            )
        server.families[name] = (description, kind)
        self._name, self._kind = name, kind
        self._live: weakref.WeakSet = weakref.WeakSet()  # its metrics still referenced
        weakref.finalize(self, server._family_dropped, name, self._live)

    def Metric(self, labels: dict[str, str] | None = None, buckets: list[float] | None = None) -> Metric:
        labels = {} if labels is None else labels
        if not isinstance(labels, dict):
            raise TritonModelException("Failed to create metric. Labels must be a dictionary.")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise TritonModelException("Failed to create metric. Label names and values must be strings.")
        if buckets is not None:
            if not isinstance(buckets, list):
                raise TritonModelException("Failed to create metric. Buckets must be a list.")
            if self._kind != MetricKind.HISTOGRAM:
                raise TritonModelException("Failed to create metric. Unexpected buckets found.")
        elif self._kind == MetricKind.HISTOGRAM:
            raise TritonModelException("Failed to create metric. Missing required buckets.")
        key = (self._name, tuple(sorted(labels.items())))
        series = _server().series.setdefault(
            key, Series(self._name, self._kind, dict(labels), None if buckets is None else [float(b) for b in buckets])
        )
        metric = Metric(self, series)
        self._live.add(metric)
        return metric


# --- the fake server: scripted models, the BLS calls they get ------------------------------------
@dataclass
class Model:
    name: str
    handler: Callable
    decoupled: bool = False
    sequence: bool = False
    config: object | None = None  # model_config_pb2.ModelConfig, from model_repository/<name>/config.pbtxt
    ready: bool = True
    open_sequences: set = field(default_factory=set)


@dataclass
class Call:
    """One BLS call: the request as the caller made it, as the model got it, what the caller read."""

    model: str
    request: InferenceRequest
    decoupled: bool  # exec(decoupled=...)
    received: InferenceRequest | None = None  # None: Triton refused it before the model
    responses: list = field(default_factory=list)  # as the caller read them, in order
    finished: bool = False  # the caller read the last response (the one with the final flag)

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        return {t.name(): t.as_numpy() for t in (self.received or self.request).inputs()}

    @property
    def parameters(self) -> dict:
        return json.loads(self.request.parameters())

    @property
    def timeout(self) -> int:
        return self.request.timeout()

    @property
    def correlation_id(self) -> int | str:
        return self.request.correlation_id()

    @property
    def flags(self) -> int:
        return self.request.flags()

    @property
    def requested(self) -> list[str]:
        return self.request.requested_output_names()


class ResponseIterator:
    """A decoupled BLS call's responses, each as it comes; the one with the final flag is the last."""

    def __init__(self, call: Call, wait_s: float):
        self._call, self._wait_s = call, wait_s
        self._queue: queue.Queue = queue.Queue()
        self._done = False

    def _put(self, response: InferenceResponse, last: bool) -> None:
        self._queue.put((response, last))

    def __iter__(self) -> ResponseIterator:
        return self

    def __next__(self) -> InferenceResponse:
        if self._done:
            raise StopIteration
        try:
            response, last = self._queue.get(timeout=self._wait_s)
        except queue.Empty:
            raise AssertionError(
                f"{self._call.model}: no response and no final flag within {self._wait_s} s: Triton would wait forever"
            ) from None
        self._call.responses.append(response)
        if last:
            self._done = self._call.finished = True
        return response

    def cancel(self) -> None:
        if self._call.received is not None and self._call.received._sender is not None:
            self._call.received._sender.cancelled = True


def model_config(name: str):
    """model_repository/<name>/config.pbtxt, parsed; None when there is none."""
    path = REPOSITORY / name / "config.pbtxt"
    if not path.exists():
        return None
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _config_type(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2

    name = model_config_pb2.DataType.Name(data_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def _shape(dims) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


class FakeTriton:
    """The server behind the fake module: the models BLS calls reach, the calls, metrics and log."""

    def __init__(self, stream_wait_s: float = 5.0):
        self.stream_wait_s = stream_wait_s  # how long a BLS stream waits for the next response
        self.models: dict[str, Model] = {}
        self.calls: list[Call] = []
        self.log: list[tuple[str, str]] = []  # (level, message) from pb_utils.Logger
        self.model_control: list[tuple[str, str]] = []  # ("load" or "unload", model)
        self.families: dict[str, tuple[str, MetricKind]] = {}  # name -> (description, kind)
        self.series: dict[tuple, Series] = {}  # (family, sorted labels) -> its metric
        self.metric_errors: list[str] = []
        self._lock = threading.Lock()
        self.module = types.ModuleType(MODULE, "The fake triton_python_backend_utils (tests/fake_pb_utils.py).")
        for name in _API:
            setattr(self.module, name, globals()[name])

    # --- scripting -----------------------------------------------------------------------------
    def model(
        self,
        name: str,
        handler: Callable,
        *,
        decoupled: bool | None = None,
        sequence: bool | None = None,
        config: bool = True,
    ) -> Model:
        """Scripts model `name`. `handler(request)` gets each request as the model gets it and
        returns its response: an InferenceResponse (pb_utils.InferenceResponse, `error(...)`) or a
        dict of output arrays. A decoupled model's handler returns an iterable of them instead (each
        is sent, then the final flag alone), or answers through request.get_response_sender(), then
        or from threads of its own. An exception becomes Triton's error response. Decoupled and
        sequence come from model_repository/<name>/config.pbtxt (unless given, or config=False),
        and requests are checked against its inputs."""
        parsed = model_config(name) if config else None
        if decoupled is None:
            decoupled = bool(parsed and parsed.model_transaction_policy.decoupled)
        if sequence is None:
            sequence = bool(parsed and parsed.HasField("sequence_batching"))
        self.models[name] = Model(name, handler, decoupled, sequence, parsed)
        return self.models[name]

    def args(self, name: str) -> dict[str, str]:
        """What Triton gives TritonPythonModel.initialize: the model's config as JSON (int64 as numbers)."""
        from google.protobuf import json_format

        config = json_format.MessageToDict(model_config(name), preserving_proto_field_name=True)
        return {
            "model_config": json.dumps(_numbers(config)),
            "model_instance_kind": "CPU",
            "model_instance_name": f"{name}_0_0",
            "model_instance_device_id": "0",
            "model_repository": str(REPOSITORY / name),
            "model_version": "1",
            "model_name": name,
        }

    def model_py(self, name: str, serve: bool = True):
        """model_repository/<name>/1/model.py's TritonPythonModel, initialized; with `serve`, BLS
        calls to `name` reach its execute."""
        path = REPOSITORY / name / "1" / "model.py"
        spec = importlib.util.spec_from_file_location(f"fake_triton_model_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        instance = module.TritonPythonModel()
        instance.initialize(self.args(name))
        if serve:
            self.model(name, lambda request: instance.execute([request]))
        return instance

    def metric(self, family: str, **labels: str) -> Series:
        """For tests: the metric of `family` with these labels."""
        return self.series[(family, tuple(sorted(labels.items())))]

    def calls_to(self, model: str) -> list[Call]:
        return [c for c in self.calls if c.model == model]

    # --- what InferenceRequest.exec reaches ----------------------------------------------------
    def _exec(self, request: InferenceRequest, decoupled: bool):
        call = Call(request._model_name, request, decoupled)
        with self._lock:
            self.calls.append(call)
        stream = ResponseIterator(call, self.stream_wait_s)
        refused = self._refusal(request, decoupled)
        if refused is not None:
            stream._put(InferenceResponse([], refused), last=True)
        else:
            model = self.models[request._model_name]
            received = self._received(model, request, stream)
            call.received = received
            self._run(model, received)
        if decoupled:
            return stream
        response = next(stream)
        if not call.finished:
            raise AssertionError(f"{call.model}: more than one response to a call that is not decoupled")
        return response

    def _refusal(self, request: InferenceRequest, decoupled: bool) -> TritonError | None:
        name = request._model_name
        model = self.models.get(name)
        if model is None:
            return TritonError(f"Request for unknown model: '{name}' is not found", TritonError.NOT_FOUND)
        if not model.ready:
            return TritonError(
                f"Request for unknown model: '{name}' has no available versions", TritonError.UNAVAILABLE
            )
        if model.decoupled and not decoupled:
            return TritonError(
                f"Model {name} is using the decoupled. The current BLS request call doesn't support models using "
                "the decoupled transaction policy. Please use 'decoupled=True' argument to the 'exec' or "
                "'async_exec' calls for decoupled models.'"
            )
        problem = self._input_problem(model, request) or self._sequence_problem(model, request)
        return (
            None if problem is None else TritonError(f"[request id: <id_unknown>] {problem}", TritonError.INVALID_ARG)
        )

    def _input_problem(self, model: Model, request: InferenceRequest) -> str | None:
        config = model.config
        if config is None:
            return None
        declared = {t.name: t for t in config.input}
        given = {t.name(): t for t in request.inputs()}
        for name, tensor in given.items():
            if name not in declared:
                return f"unexpected inference input '{name}' for model '{model.name}'"
            expected = _config_type(declared[name].data_type)
            if tensor.triton_dtype() != expected:
                return (
                    f"inference input '{name}' data-type is '{tensor.triton_dtype()}', but model '{model.name}' "
                    f"expects '{expected}'"
                )
            dims = list(declared[name].dims)
            shape = tensor.shape()
            if config.max_batch_size > 0:
                if not shape or not 1 <= shape[0] <= config.max_batch_size:
                    return f"inference request batch-size must be <= {config.max_batch_size} for '{model.name}'"
                shape = shape[1:]
            if len(shape) != len(dims) or any(d != -1 and d != s for d, s in zip(dims, shape)):
                return (
                    f"unexpected shape for input '{name}' for model '{model.name}'. Expected {_shape(dims)}, "
                    f"got {_shape(tensor.shape())}"
                )
        missing = [t.name for t in config.input if not t.optional and t.name not in given]
        if missing:
            return (
                f"expected {len(declared)} inputs but got {len(given)} inputs for model '{model.name}'. Got input(s) "
                f"{sorted(given)}, but missing required input(s) {missing}. Please provide all required input(s)."
            )
        return None

    def _sequence_problem(self, model: Model, request: InferenceRequest) -> str | None:
        if not model.sequence:
            return None
        sequence, flags = request.correlation_id(), request.flags()
        if sequence in (0, ""):
            return f"inference request to model '{model.name}' must specify a non-zero or non-empty correlation ID"
        with self._lock:
            if flags & TRITONSERVER_REQUEST_FLAG_SEQUENCE_START:
                model.open_sequences.add(sequence)
            elif sequence not in model.open_sequences:
                return (
                    f"inference request for sequence {sequence} to model '{model.name}' must specify the START flag "
                    "on the first request of the sequence"
                )
            if flags & TRITONSERVER_REQUEST_FLAG_SEQUENCE_END:
                model.open_sequences.discard(sequence)
        return None

    def _received(self, model: Model, request: InferenceRequest, stream: ResponseIterator) -> InferenceRequest:
        """The request as the model gets it: inputs handed over, a sequence's control inputs added."""
        requested = request.requested_output_names()

        def deliver(response: InferenceResponse | None, flags: int) -> None:
            if response is None:
                response = InferenceResponse([])  # the final flag alone
            problem = None if response.has_error() else self._output_problem(model, response)
            if problem is not None:
                response = InferenceResponse([], TritonError(problem))
            stream._put(response._handed_over(requested), last=flags == FINAL)

        received = InferenceRequest(
            request_id=request.request_id(),
            correlation_id=request.correlation_id(),
            inputs=[t._handed_over() for t in request.inputs()] + self._controls(model, request),
            requested_output_names=requested,
            model_name=model.name,
            flags=request.flags(),
            timeout=request.timeout(),
        )
        received._parameters = request.parameters()
        received._sender = InferenceResponseSender(model.decoupled, deliver)
        return received

    @staticmethod
    def _output_problem(model: Model, response: InferenceResponse) -> str | None:
        if model.config is None:
            return None
        declared = {t.name: _config_type(t.data_type) for t in model.config.output}
        for tensor in response.output_tensors():
            if tensor.name() not in declared:
                return f"fake Triton: output '{tensor.name()}' of model '{model.name}' is not in its config.pbtxt"
            if tensor.triton_dtype() != declared[tensor.name()]:
                return (
                    f"fake Triton: output '{tensor.name()}' of model '{model.name}' is {tensor.triton_dtype()}, "
                    f"its config.pbtxt says {declared[tensor.name()]}"
                )
        return None

    @staticmethod
    def _controls(model: Model, request: InferenceRequest) -> list[Tensor]:
        """The sequence batcher's control inputs (START, END as INT32 0/1, CORRID) for the request."""
        if not model.sequence:
            return []
        shape = (1, 1) if model.config is not None and model.config.max_batch_size > 0 else (1,)
        flags = request.flags()
        start = bool(flags & TRITONSERVER_REQUEST_FLAG_SEQUENCE_START)
        end = bool(flags & TRITONSERVER_REQUEST_FLAG_SEQUENCE_END)
        if model.config is None:
            controls = [("START", "START", "INT32"), ("END", "END", "INT32"), ("CORRID", "CORRID", "UINT64")]
        else:
            controls = []
            for control_input in model.config.sequence_batching.control_input:
                for control in control_input.control:
                    kind = type(control).Kind.Name(control.kind).removeprefix("CONTROL_SEQUENCE_")
                    corrid_type = _config_type(control.data_type) if kind == "CORRID" else "INT32"
                    controls.append((control_input.name, kind, corrid_type))
        tensors = []
        for name, kind, data_type in controls:
            if kind == "CORRID":
                value = request.correlation_id()
                array = np.array([value.encode() if isinstance(value, str) else value], dtype=_NUMPY_TYPES[data_type])
            else:
                on = {"START": start, "END": end, "READY": True}[kind]
                array = np.array([1 if on else 0], dtype=np.int32)
            tensors.append(Tensor(name, array.reshape(shape)))
        return tensors

    @staticmethod
    def _run(model: Model, request: InferenceRequest) -> None:
        """The model's execute for one request, in a context of its own (the stub is another process)."""
        sender = request._sender

        def run() -> None:
            result = model.handler(request)
            if not model.decoupled:
                if isinstance(result, list) and len(result) == 1:
                    result = result[0]  # what an execute returns
                sender.send(_as_response(result), flags=FINAL)
            elif result is not None:
                for item in result:
                    sender.send(_as_response(item))
                if not sender.closed:
                    sender.send(flags=FINAL)

        try:
            contextvars.Context().run(run)
        except Exception as exc:
            if not sender.closed:
                message = f"{type(exc).__name__}: {exc}"
                message = f"Failed to process the request(s) for model instance '{model.name}_0_0', message: {message}"
                sender.send(InferenceResponse([], TritonError(message)), flags=FINAL)

    def _family_dropped(self, name: str, live: weakref.WeakSet) -> None:
        if len(live):
            self.metric_errors.append(f"MetricFamily '{name}' deleted while {len(live)} of its metrics live")


def _as_response(item) -> InferenceResponse:
    if isinstance(item, InferenceResponse):
        return item
    if isinstance(item, dict):
        return InferenceResponse([Tensor(k, v) for k, v in item.items()])
    raise TypeError(f"a scripted model answers an InferenceResponse or a dict of arrays, not {type(item).__name__}")


def _numbers(value, key: str = ""):
    """Protobuf's JSON writes int64 as strings; Triton's model_config JSON has numbers (its parameters' values stay
    strings)."""
    if isinstance(value, dict):
        return {k: _numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v, key) for v in value]
    if isinstance(value, str) and key != "string_value" and value.lstrip("-").isdigit():
        return int(value)
    return value


_API = (
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_START",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_END",
    "TRITONSERVER_RESPONSE_COMPLETE_FINAL",
    "TRITONSERVER_REQUEST_RELEASE_ALL",
    "TRITONSERVER_REQUEST_RELEASE_RESCHEDULE",
    "TritonModelException",
    "TritonError",
    "Tensor",
    "InferenceRequest",
    "InferenceResponse",
    "InferenceResponseSender",
    "ResponseIterator",
    "get_input_tensor_by_name",
    "get_output_tensor_by_name",
    "Logger",
    "load_model",
    "unload_model",
    "is_model_ready",
    "MetricKind",
    "MetricFamily",
    "Metric",
)

_MISSING = object()


def _forget_layer() -> None:
    package = sys.modules.get(PACKAGE)
    for name in LAYER:
        sys.modules.pop(name, None)
        if package is not None and hasattr(package, name.rsplit(".", 1)[1]):
            delattr(package, name.rsplit(".", 1)[1])


@contextlib.contextmanager
def installed(**options) -> Iterator[FakeTriton]:
    """A fresh fake server and module as triton_python_backend_utils; the Triton layer's modules
    import afresh against it, and whatever was there before is back afterwards."""
    global _current
    if _current is not None:
        raise RuntimeError("a fake triton_python_backend_utils is installed already")
    saved = {name: sys.modules.get(name) for name in (MODULE, *LAYER)}
    package = sys.modules.get(PACKAGE)
    attributes = {n: getattr(package, n.rsplit(".", 1)[1], _MISSING) for n in LAYER} if package else {}
    server = FakeTriton(**options)
    _forget_layer()
    sys.modules[MODULE] = server.module
    _current = server
    try:
        yield server
    finally:
        _current = None
        _forget_layer()
        sys.modules.pop(MODULE, None)
        for name, module in saved.items():
            if module is not None:
                sys.modules[name] = module
        for name, value in attributes.items():
            if value is not _MISSING:
                setattr(package, name.rsplit(".", 1)[1], value)
