"""The stages as BLS calls from inside the server: how `pipeline` reaches `vad`, `whisper`,
`translate` and `enhance`, how `enhance` reaches `translate` and `completeness`, and how
those reach `llm`. Every call carries the server's internal token. Only imported inside
Triton's Python backend stub."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import triton_python_backend_utils as pb_utils

from livetranslate import deadline
from livetranslate import protocol as P
from livetranslate.glossary import NO_GLOSSARY, Glossary
from livetranslate.pipeline.stages import SpokenTranslation
from livetranslate.stages.enhance import Enhanced, Piece, Tick
from livetranslate.stages.llm import GenerationRequest
from livetranslate.stages.vad import Boundaries
from livetranslate.stages.whisper import AsrRequest, Transcription
from livetranslate.triton import codecs
from livetranslate.triton.glue import internal_parameters


class StageError(RuntimeError):
    pass


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
        if (
            args
            and args[0].endswith(b"triton_python_backend_stub")
            and instance.encode() in args
            and server.encode() in args
            and state != "Z"
        ):
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


def _request(model: str, tensors: codecs.Tensors, outputs: Iterable[str], extra: dict | None = None, **sequence):
    """A BLS request; it carries what is left of the caller's deadline (livetranslate.deadline)
    as its timeout, and is not made at all once that has passed."""
    deadline.check(f"a call to {model}")
    left = deadline.remaining()
    timeout = {} if left is None else {"timeout": max(1, int(left * 1e6))}
    return pb_utils.InferenceRequest(
        model_name=model,
        inputs=[pb_utils.Tensor(name, value) for name, value in tensors.items()],
        requested_output_names=list(outputs),
        parameters={**internal_parameters(), **(extra or {})},
        **timeout,
        **sequence,
    )


def _call(model: str, tensors: codecs.Tensors, outputs: Iterable[str], **sequence) -> codecs.Get:
    """One plain BLS call; its outputs for a codec."""
    outputs = list(outputs)
    return _outputs(_request(model, tensors, outputs, **sequence).exec(), outputs).get


def _stateless(model: str, tensors: codecs.Tensors, outputs: Iterable[str]) -> codecs.Get:
    """A call to a stage without sequence state, asked again while its stub is 'not healthy'."""
    return retry_unhealthy(model, lambda: _call(model, tensors, outputs))


def _sequence(sequence_id: int, start: bool, end: bool) -> dict:
    flags = (P.FLAG_SEQUENCE_START if start else 0) | (P.FLAG_SEQUENCE_END if end else 0)
    return {"correlation_id": sequence_id, "flags": flags}


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


def end_pipeline_sequence(sequence_id: int) -> None:
    """Ends a sequence of `pipeline` itself in Triton's sequence batcher, as its client would
    with its last request: a stopping server's drain does this for the clients still
    connected or gone without a last request (Triton waits for every open sequence)."""
    request = _request(P.PIPELINE, {P.AUDIO: np.zeros(0, np.int16)}, [P.KIND], **_sequence(sequence_id, False, True))
    for _ in request.exec(decoupled=True):  # to the final marker (see _decoupled)
        pass


class TritonLlm:
    """`llm` through BLS, with the TensorRT-LLM ensemble's I/O."""

    def generate(
        self, request: GenerationRequest, lane: str = "", on_piece: Callable[[str], None] | None = None
    ) -> str:
        """The generated text. `lane`: livetranslate.stages.llm.lanes (cpu profile). `on_piece`:
        called with each piece as it comes (the llm streams then)."""
        extra = {P.LLM_LANE_PARAMETER: lane} if lane else None
        if on_piece is None:
            outs = retry_unhealthy(
                P.LLM,
                lambda: _decoupled(
                    _request(P.LLM, codecs.generation_to_tensors(request), [P.TEXT_OUTPUT], extra), [P.TEXT_OUTPUT]
                ),
            )
            return "".join(P.decode_text(out[P.TEXT_OUTPUT]) for out in outs if P.TEXT_OUTPUT in out)

        sent = 0  # characters on_piece has had, across attempts: a retry generates the text again

        def streamed() -> str:
            nonlocal sent
            tensors = codecs.generation_to_tensors(request, stream=True)
            text = ""
            for result in _request(P.LLM, tensors, [P.TEXT_OUTPUT], extra).exec(decoupled=True):
                out = _outputs(result, [P.TEXT_OUTPUT])  # an error is the last response
                if P.TEXT_OUTPUT in out:
                    text += P.decode_text(out[P.TEXT_OUTPUT])
                    if len(text) > sent:  # only what the reader has not seen yet
                        on_piece(text[sent:])
                        sent = len(text)
            return text

        return retry_unhealthy(P.LLM, streamed)

    def yes_probability(self, prompt: str) -> float:
        outs = retry_unhealthy(
            P.LLM,
            lambda: _decoupled(
                _request(P.LLM, codecs.yes_probability_request(prompt), [P.TEXT_OUTPUT, P.YES_PROBABILITY]),
                [P.YES_PROBABILITY],
            ),
        )
        for out in outs:
            if P.YES_PROBABILITY in out:
                return float(out[P.YES_PROBABILITY].reshape(-1)[0])
        raise StageError("llm returned no yes_probability")


class TritonStages:
    """The pipeline's stages (livetranslate.pipeline.stages.Stages), and what `enhance` asks."""

    BOUNDARY_OUTPUTS = (P.START_SAMPLE, P.END_SAMPLE, P.SPEECH_END_SAMPLE)

    def __init__(self):
        self._partial_model = P.WHISPER_PARTIAL  # until Triton says it has none

    def vad(self, sequence_id: int, audio: np.ndarray, start: bool, end: bool) -> Boundaries:
        out = _call(P.VAD, codecs.vad_request(audio), self.BOUNDARY_OUTPUTS, **_sequence(sequence_id, start, end))
        return codecs.boundaries_from_tensors(out)

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

    def embed_speaker(self, audio: np.ndarray) -> np.ndarray:
        out = _stateless(P.SPEAKERS_MODEL, codecs.speaker_audio_to_tensors(audio), (P.EMBEDDING,))
        return codecs.embedding_from(out)

    def _whisper(self, model: str, request: AsrRequest) -> Transcription:
        out = _stateless(model, codecs.asr_request_to_tensors(request), codecs.TRANSCRIPTION_OUTPUTS)
        return codecs.transcription_from_tensors(out)

    def translate(
        self, text: str, source: str, target: str, context: str = "", glossary: Glossary = NO_GLOSSARY
    ) -> str:
        tensors = codecs.translate_request_to_tensors(codecs.TextRequest(text, source, target, context, glossary))
        answers = retry_unhealthy(
            P.TRANSLATE,
            lambda: _decoupled(_request(P.TRANSLATE, tensors, codecs.TRANSLATION_OUTPUTS), codecs.TRANSLATION_OUTPUTS),
        )
        return codecs.translation_from(answers).text

    def summarize(self, text: str, source: str, target: str) -> str:
        """One piece of a meeting summarized by the LLM (stages.summary), in the background lane."""
        tensors = codecs.translate_request_to_tensors(codecs.TextRequest(text, source, target), summary=True)
        answers = retry_unhealthy(
            P.TRANSLATE,
            lambda: _decoupled(_request(P.TRANSLATE, tensors, codecs.TRANSLATION_OUTPUTS), codecs.TRANSLATION_OUTPUTS),
        )
        return codecs.translation_from(answers).text

    def translate_urgent(
        self,
        text: str,
        source: str,
        target: str,
        glossary: Glossary = NO_GLOSSARY,
        *,
        fast: bool = False,
        on_interim: Callable[[str], None] | None = None,
    ) -> SpokenTranslation:
        """The speaker's translation: the llm's urgent lane (the fast one when `fast`), the
        text so far to `on_interim` while it is generated."""
        tensors = codecs.translate_request_to_tensors(
            codecs.TextRequest(text, source, target, "", glossary),
            urgent=True,
            fast=fast,
            interim=on_interim is not None,
        )

        def answers():
            final = []
            for result in _request(P.TRANSLATE, tensors, codecs.TRANSLATION_OUTPUTS).exec(decoupled=True):
                out = _outputs(result, codecs.TRANSLATION_OUTPUTS)
                if not out:
                    continue
                answer = codecs.translation_from([out])
                if answer.interim:
                    if on_interim is not None:
                        on_interim(answer.text)
                else:
                    final.append(out)
            answer = codecs.translation_from(final)
            return SpokenTranslation(answer.text, answer.fast)

        return retry_unhealthy(P.TRANSLATE, answers)

    def is_complete(self, text: str, source: str) -> bool:
        tensors = codecs.completeness_request_to_tensors(codecs.TextRequest(text, source))
        return bool(codecs.scalar(_stateless(P.COMPLETENESS, tensors, [P.COMPLETE, P.PROBABILITY]), P.COMPLETE))

    def enhance(
        self,
        sequence_id: int,
        step: Piece | Tick,
        source: str,
        target: str,
        start: bool,
        end: bool,
        check_complete: bool = True,
        flush: bool = True,
        glossary: Glossary = NO_GLOSSARY,
        translate_window: bool = True,
    ) -> list[Enhanced]:
        tensors = codecs.enhance_request_to_tensors(
            codecs.EnhanceRequest(step, source, target, check_complete, flush, glossary, translate_window)
        )
        out = _call(P.ENHANCE, tensors, codecs.ENHANCED_OUTPUTS, **_sequence(sequence_id, start, end))
        return codecs.enhanced_from_tensors(out)
