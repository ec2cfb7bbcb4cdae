"""The tensors of the internal models (livetranslate/triton/codecs.py): every value a stage
sends comes back whole from its tensors, with the names and dtypes its config.pbtxt declares."""

from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from livetranslate import protocol as P
from livetranslate.stages.enhance import Enhanced, Piece, Tick
from livetranslate.stages.llm import GenerationRequest
from livetranslate.stages.vad import Boundaries, Ongoing, Utterance
from livetranslate.stages.whisper import AsrRequest, Transcription
from livetranslate.triton import codecs

REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
DTYPES = {
    "TYPE_FP32": np.float32,
    "TYPE_INT64": np.int64,
    "TYPE_INT32": np.int32,
    "TYPE_BOOL": np.bool_,
    "TYPE_STRING": np.object_,
    "TYPE_INT16": np.int16,
}


def check(model: str, side: str, tensors: dict[str, np.ndarray]) -> None:
    """Only tensors the model declares, with its dtypes, and every input it requires."""
    config = text_format.Parse((REPOSITORY / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    declared = {t.name: DTYPES[model_config_pb2.DataType.Name(t.data_type)] for t in getattr(config, side)}
    assert set(tensors) <= set(declared), set(tensors) - set(declared)
    for name, value in tensors.items():
        assert value.dtype == declared[name], (model, name, value.dtype)
    if side == "input":
        assert {t.name for t in config.input if not t.optional} <= set(tensors)


@pytest.mark.parametrize(
    "found",
    [
        Boundaries(),
        Boundaries((Utterance(100, 105, 104), Utterance(200, 203, 203))),
        Boundaries((Utterance(100, 105, 104),), Ongoing(300, 350)),
        Boundaries(ongoing=Ongoing(0, 0)),
    ],
)
def test_vad_boundaries_come_back_whole(found):
    tensors = codecs.boundaries_to_tensors(found)
    check(P.VAD, "output", tensors)
    assert codecs.boundaries_from_tensors(tensors.get) == found
    audio = np.arange(7, dtype=np.float32)
    check(P.VAD, "input", codecs.vad_request(audio))
    assert np.array_equal(codecs.vad_audio(codecs.vad_request(audio).get), audio)


@pytest.mark.parametrize("step", [Piece(4, "Guten Morgen — ü", 1.5, 3.25), Tick(12.5)])
@pytest.mark.parametrize("check_complete, flush", [(True, True), (False, False)])
def test_enhance_requests_come_back_whole(step, check_complete, flush):
    request = codecs.EnhanceRequest(step, "de", "en", check_complete, flush)
    tensors = codecs.enhance_request_to_tensors(request)
    check(P.ENHANCE, "input", tensors)
    assert codecs.enhance_request_from(tensors.get) == request


def test_enhance_defaults_and_enhanced_rows():
    minimal = {P.TEXT: codecs.text_tensor("Hallo"), P.END_S: np.array([2.0], np.float32)}
    asked = codecs.enhance_request_from(minimal.get)
    assert asked.check_complete and asked.flush and (asked.source, asked.target) == ("de", "en")
    items = [Enhanced(3, 5, "Good morning, everyone.", 1.5, 7.25, ""), Enhanced(6, 6, "Grüße — ü", 8.0, 9.5, "")]
    for rows in (items, []):
        tensors = codecs.enhanced_to_tensors(rows)
        check(P.ENHANCE, "output", tensors)
        assert codecs.enhanced_from_tensors(tensors.get) == rows


def test_whisper_requests_and_answers_come_back_whole():
    request = AsrRequest(np.linspace(-1, 1, 50, dtype=np.float32), "de", "Vorher.", "Präfix", 3)
    tensors = codecs.asr_request_to_tensors(request)
    check(P.WHISPER, "input", tensors)
    back = codecs.asr_request_from(tensors.get)
    assert np.array_equal(back.audio, request.audio) and back.prefix == "Präfix" and back.beam_size == 3
    assert (back.language, back.prompt) == ("de", "Vorher.")
    result = Transcription("Grüß Gott.", "de", 0.25, -0.5, 1.5)
    tensors = codecs.transcription_to_tensors(result)
    check(P.WHISPER, "output", tensors)
    assert codecs.transcription_from_tensors(tensors.get) == result
    with pytest.raises(P.ProtocolError, match="BEAM_SIZE"):
        codecs.asr_request_from(
            {**tensors, P.AUDIO: np.ones((1, 5), np.float32), P.BEAM_SIZE: np.array([[99]], np.int32)}.get
        )


def test_text_requests_and_generation_come_back_whole():
    request = codecs.TextRequest("Hallo Welt", "de", "fr", "Hello.")
    tensors = codecs.translate_request_to_tensors(request)
    check(P.TRANSLATE, "input", tensors)
    assert codecs.text_request_from(tensors.get) == request
    tensors = codecs.completeness_request_to_tensors(request)
    check(P.COMPLETENESS, "input", tensors)
    assert codecs.text_request_from(tensors.get) == codecs.TextRequest("Hallo Welt", "de")
    check(P.COMPLETENESS, "output", codecs.completeness_to_tensors(True, 0.75))
    generation = GenerationRequest("Übersetze", 40, 0.5, 3, ("<|im_end|>", "\n"))
    tensors = codecs.generation_to_tensors(generation)
    check(P.LLM, "input", tensors)
    check(P.LLM, "input", codecs.yes_probability_request("Fertig?"))
    assert codecs.generation_from(tensors.get) == generation
    with pytest.raises(P.ProtocolError, match="text_input is empty"):
        codecs.generation_from(codecs.yes_probability_request("").get)
