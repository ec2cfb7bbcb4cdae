"""The Triton layer (livetranslate/triton: codecs, glue, bls, metrics) against a stand-in for
`triton_python_backend_utils` (tests/fake_pb_utils.py): every stage's values through Triton's
tensors, the BLS calls the stages make and the answers they read, what a model.py sends back
and with which flags, who may call an internal model, and the metrics. No server; fast."""

import gc
import importlib
import logging
import sys
import time

import fake_pb_utils
import numpy as np
import pytest
from fake_pb_utils import FINAL, error, make_request, outputs

from livetranslate import deadline
from livetranslate import protocol as P
from livetranslate.glossary import parse as parse_glossary
from livetranslate.pipeline import metrics as M
from livetranslate.pipeline.metrics import FAMILIES, Gauges
from livetranslate.pipeline.stages import SpokenTranslation
from livetranslate.protocol import Event, EventKind
from livetranslate.stages.enhance import Enhanced, Piece, Tick
from livetranslate.stages.llm import GenerationRequest
from livetranslate.stages.vad import Boundaries, Ongoing, Utterance
from livetranslate.stages.whisper import AsrRequest, Transcription
from livetranslate.triton import codecs

TOKEN = "the-token-of-this-server"
UNHEALTHY = "Failed to process the request(s): Stub process '{}_0_0' is not healthy."
GLOSSARY = parse_glossary("Zorvexa\nTranovix Hub = Tranovix-Zentrale\n")


@pytest.fixture
def triton(monkeypatch, tmp_path):
    """A fake Triton: the server's internal token set, no settings file or config file read."""
    monkeypatch.setenv(P.INTERNAL_TOKEN_ENV, TOKEN)
    monkeypatch.delenv("LIVETRANSLATE_SETTINGS_FILE", raising=False)
    monkeypatch.setenv("LIVETRANSLATE_CONFIG", str(tmp_path / "no-config.toml"))
    with fake_pb_utils.installed() as server:
        yield server


@pytest.fixture
def glue(triton):
    return importlib.import_module("livetranslate.triton.glue")


@pytest.fixture
def bls(triton):
    return importlib.import_module("livetranslate.triton.bls")


@pytest.fixture
def triton_metrics(triton):
    return importlib.import_module("livetranslate.triton.metrics")


def internal(inputs=None, **options):
    """A request as an internal model gets it from the server's own BLS call."""
    return make_request(inputs, parameters={P.INTERNAL_PARAMETER: TOKEN, **options.pop("parameters", {})}, **options)


def stage(glue, name, decode, answer, seen):
    """A scripted model.py of a plain (not decoupled) stage, through glue as the models go: the
    request decoded (`decode`) is kept in `seen`, and `answer(decoded)`'s tensors go back."""

    def handler(request):
        def respond(request):
            seen.append(decode(glue.inputs(request)))
            return answer(seen[-1])

        return glue.respond_each([request], respond, name)

    return handler


# --- (1) every stage's values through Triton's tensors, both ways -----------------------------
@pytest.mark.parametrize(
    "found",
    [
        Boundaries(),
        Boundaries((Utterance(100, 105, 104), Utterance(200, 203, 203))),
        Boundaries((Utterance(100, 105, 104),), Ongoing(300, 350)),
    ],
)
def test_vad_audio_and_boundaries_cross_the_bls_call_whole(triton, glue, bls, found):
    seen = []
    triton.model(P.VAD, stage(glue, P.VAD, codecs.vad_audio, lambda _: codecs.boundaries_to_tensors(found), seen))
    audio = np.linspace(-1, 1, 480, dtype=np.float32)
    assert bls.TritonStages().vad(7, audio, True, False) == found
    assert np.array_equal(seen[0], audio) and seen[0].dtype == np.float32
    assert bls.TritonStages().vad(7, np.zeros(0, np.float32), False, True) == found  # an empty chunk ends it
    assert seen[1].size == 0


def test_whisper_requests_and_utf8_transcripts_cross_the_bls_call_whole(triton, glue, bls):
    seen = []
    result = Transcription("Grüß Gott — ça va? 你好", "de", 0.25, -0.5, 1.5)
    answer = codecs.transcription_to_tensors
    triton.model(P.WHISPER, stage(glue, P.WHISPER, codecs.asr_request_from, lambda _: answer(result), seen))
    request = AsrRequest(np.linspace(-1, 1, 50, dtype=np.float32), "de", "Vorher — ü.", "Präfix", 3, "Zorvexa")
    assert bls.TritonStages().whisper(request) == result
    back = seen[0]
    assert np.array_equal(back.audio, request.audio)
    assert {k: v for k, v in vars(back).items() if k != "audio"} == {
        k: v for k, v in vars(request).items() if k != "audio"
    }


def test_translate_requests_and_answers_cross_the_bls_call_whole(triton, glue, bls):
    seen = []

    def translate(request):
        def answer(send):
            seen.append(codecs.text_request_from(glue.inputs(request)))
            return codecs.translation_to_tensors("Bonjour — œuvre «ça»")

        glue.respond_streaming(request, answer, P.TRANSLATE)

    triton.model(P.TRANSLATE, translate)
    text = bls.TritonStages().translate("Grüße an die Tranovix Hub", "de", "fr", "Vorher.", GLOSSARY)
    assert text == "Bonjour — œuvre «ça»"
    assert seen == [codecs.TextRequest("Grüße an die Tranovix Hub", "de", "fr", "Vorher.", GLOSSARY)]


@pytest.mark.parametrize("complete", [True, False])
def test_completeness_requests_and_answers_cross_the_bls_call_whole(triton, glue, bls, complete):
    seen = []
    answer = codecs.completeness_to_tensors(complete, 0.75)
    triton.model(P.COMPLETENESS, stage(glue, P.COMPLETENESS, codecs.text_request_from, lambda _: answer, seen))
    assert bls.TritonStages().is_complete("Das ist ein Satz über Äpfel", "de") is complete
    assert seen == [codecs.TextRequest("Das ist ein Satz über Äpfel", "de")]


@pytest.mark.parametrize("step", [Piece(4, "Guten Morgen — ü", 1.5, 3.25), Tick(12.5)])
@pytest.mark.parametrize(
    "rows", [[], [Enhanced(3, 5, "Good morning, everyone.", 1.5, 7.25, ""), Enhanced(6, 6, "Grüße — ü", 8.0, 9.5, "")]]
)
def test_enhance_steps_and_rows_cross_the_bls_call_whole(triton, glue, bls, step, rows):
    seen = []
    answer = codecs.enhanced_to_tensors(rows)
    triton.model(P.ENHANCE, stage(glue, P.ENHANCE, codecs.enhance_request_from, lambda _: answer, seen))
    got = bls.TritonStages().enhance(9, step, "de", "en", True, False, False, True, GLOSSARY, False)
    assert got == rows
    assert seen == [codecs.EnhanceRequest(step, "de", "en", False, True, GLOSSARY, False)]


def test_llm_generation_requests_cross_the_bls_call_whole_and_its_pieces_come_back_joined(triton, glue, bls):
    seen = []

    def llm(request):
        def produce():
            seen.append(codecs.generation_from(glue.inputs(request)))
            for piece in ("Grüße", " — ", "ü"):
                yield {P.TEXT_OUTPUT: codecs.text_tensor(piece, batch=True)}

        glue.respond_decoupled(request, produce, P.LLM)

    triton.model(P.LLM, llm)
    generation = GenerationRequest("Übersetze: Hallo", 40, 0.5, 3, ("<|im_end|>", "\n"))
    assert bls.TritonLlm().generate(generation) == "Grüße — ü"
    assert seen == [generation]


def test_a_str_element_crosses_as_utf8_bytes_and_absent_or_empty_inputs_read_as_their_defaults(glue):
    request = make_request(
        {
            P.TEXT: np.array(["Grüße — ü"], dtype=np.object_),  # a str, not bytes: Triton sends its UTF-8
            P.CONTEXT: np.array([], dtype=np.object_),
            P.SEGMENT_ID: np.array([5], np.int64),
        }
    )
    get = glue.inputs(request)
    assert get(P.TEXT).tolist() == ["Grüße — ü".encode()] and get(P.TEXT).dtype == np.object_
    assert codecs.text(get, P.TEXT) == "Grüße — ü"
    assert codecs.text(get, P.CONTEXT, "none") == "none" and codecs.texts(get, P.CONTEXT) == []
    assert get(P.GLOSSARY) is None and glue.get(request, P.GLOSSARY) is None
    assert codecs.text(get, P.SOURCE_LANGUAGE, "de") == "de" and codecs.scalar(get, P.FLUSH, True) is True
    assert codecs.scalar(get, P.SEGMENT_ID) == 5


def test_an_event_a_model_sends_comes_back_whole_through_triton_tensors(glue):
    event = Event(EventKind.TRANSLATION, "Grüße — ü «ça»", 3, 1.5, 2.25, "fr", 812.5, 2, "", "fast model")
    request = make_request()
    reply = glue.DecoupledReply(request)
    reply.send(event)
    (sent,) = request.sender.outputs()
    assert set(sent) == set(event.to_tensors())
    assert Event.from_tensors(sent.get) == event


def test_a_tensor_triton_has_no_type_for_is_refused_where_it_is_made(glue):
    with pytest.raises(fake_pb_utils.TritonModelException, match="dtype is not supported"):
        glue.response({P.TEXT: np.array(["numpy unicode"])})
    response = glue.response({P.TEXT: codecs.text_tensor("bytes are fine")})
    assert outputs(response)[P.TEXT].tolist() == [b"bytes are fine"]


# --- (2) the BLS calls: what they carry, what they read -----------------------------------------
def test_every_bls_call_carries_the_servers_token_and_names_its_model_inputs_and_outputs(triton, glue, bls):
    triton.model(P.COMPLETENESS, lambda request: codecs.completeness_to_tensors(True, 0.9))
    assert bls.TritonStages().is_complete("Hallo Welt.", "de") is True
    (call,) = triton.calls
    assert call.model == P.COMPLETENESS and not call.decoupled and call.finished
    assert call.parameters == {P.INTERNAL_PARAMETER: TOKEN}
    assert set(call.inputs) == {P.TEXT, P.SOURCE_LANGUAGE}
    assert call.requested == [P.COMPLETE, P.PROBABILITY]
    assert (call.timeout, call.correlation_id, call.flags) == (0, 0, 0)  # no deadline, no sequence


def test_an_llm_call_names_its_lane_only_when_it_has_one(triton, bls):
    triton.model(P.LLM, lambda request: [{P.TEXT_OUTPUT: codecs.text_tensor("ok", batch=True)}])
    llm = bls.TritonLlm()
    assert llm.generate(GenerationRequest("a"), lane="urgent") == "ok"
    assert llm.generate(GenerationRequest("b")) == "ok"
    assert [c.parameters for c in triton.calls] == [
        {P.INTERNAL_PARAMETER: TOKEN, P.LLM_LANE_PARAMETER: "urgent"},
        {P.INTERNAL_PARAMETER: TOKEN},
    ]
    assert all(c.decoupled and c.finished for c in triton.calls)


def test_a_call_made_within_a_deadline_carries_what_is_left_of_it_as_its_timeout(triton, bls):
    triton.model(P.COMPLETENESS, lambda request: codecs.completeness_to_tensors(False, 0.1))
    with deadline.within(2.0):
        bls.TritonStages().is_complete("Hallo", "de")
    assert 1_500_000 < triton.calls[0].timeout <= 2_000_000


def test_a_call_whose_deadline_has_passed_is_not_made(triton, bls):
    triton.model(P.COMPLETENESS, lambda request: codecs.completeness_to_tensors(False, 0.1))
    with deadline.within(-0.5), pytest.raises(deadline.DeadlineExceeded, match="a call to completeness"):
        bls.TritonStages().is_complete("Hallo", "de")
    assert triton.calls == []


def test_an_error_response_becomes_a_stage_error_with_the_models_message(triton, bls):
    triton.model(P.COMPLETENESS, lambda request: error("completeness: the llm fell over"))
    with pytest.raises(bls.StageError, match="completeness: the llm fell over"):
        bls.TritonStages().is_complete("Hallo", "de")

    def crashes(request):
        raise MemoryError("out of memory")

    triton.model(P.ENHANCE, crashes)
    with pytest.raises(bls.StageError, match="model instance 'enhance_0_0', message: MemoryError: out of memory"):
        bls.TritonStages().enhance(3, Tick(1.0), "de", "en", True, False)


def test_a_call_to_a_model_the_server_does_not_have_is_a_stage_error(triton, bls):
    with pytest.raises(bls.StageError, match="unknown model: 'completeness'"):
        bls.TritonStages().is_complete("Hallo", "de")


def test_a_decoupled_stage_is_read_in_order_to_its_final_flag_and_its_last_answer_kept(triton, bls):
    answers = [
        codecs.translation_to_tensors("Hello", interim=True),
        codecs.translation_to_tensors("Hello wor", interim=True),
        codecs.translation_to_tensors("Hello world"),
    ]
    triton.model(P.TRANSLATE, lambda request: answers)
    assert bls.TritonStages().translate("Hallo Welt", "de", "en") == "Hello world"
    (call,) = triton.calls
    assert call.decoupled and call.finished
    assert [outputs(r)[P.TRANSLATION].tolist() for r in call.responses[:3]] == [
        [b"Hello"],
        [b"Hello wor"],
        [b"Hello world"],
    ]
    assert outputs(call.responses[3]) == {}  # the final flag alone


def test_the_speakers_translation_hands_out_its_interims_in_order_and_asks_the_urgent_lane(triton, glue, bls):
    def translate(request):
        sender = request.get_response_sender()
        for text in ("Hello", "Hello wor"):
            sender.send(glue.response(codecs.translation_to_tensors(text, interim=True)))
        sender.send(glue.response(codecs.translation_to_tensors("Hello world", fast=True)), FINAL)

    triton.model(P.TRANSLATE, translate)
    interims = []
    got = bls.TritonStages().translate_urgent("Hallo Welt", "de", "en", fast=True, on_interim=interims.append)
    assert got == SpokenTranslation("Hello world", fast=True)
    assert interims == ["Hello", "Hello wor"]
    (call,) = triton.calls
    assert call.finished and {P.URGENT, P.FAST, P.INTERIM} <= set(call.inputs)
    assert codecs.translate_flags_from(call.inputs.get) == codecs.TranslateFlags(True, True, True)


def test_an_error_mid_stream_ends_the_call_with_a_stage_error_after_the_pieces_before_it(triton, glue, bls):
    def llm(request):
        def produce():
            yield {P.TEXT_OUTPUT: codecs.text_tensor("Hel", batch=True)}
            yield {P.TEXT_OUTPUT: codecs.text_tensor("lo", batch=True)}
            raise RuntimeError("the context is full")

        glue.respond_decoupled(request, produce, P.LLM)

    triton.model(P.LLM, llm)
    pieces = []
    with pytest.raises(bls.StageError, match="llm: the context is full"):
        bls.TritonLlm().generate(GenerationRequest("Hallo"), on_piece=pieces.append)
    assert pieces == ["Hel", "lo"]
    assert triton.calls[0].finished  # the error carried the final flag: nothing is left unread


def test_a_streamed_generation_asked_again_does_not_hand_out_its_pieces_twice(triton, glue, bls, monkeypatch):
    monkeypatch.setattr(bls, "stub_alive", lambda instance: True)  # a stub that missed a heartbeat
    attempts = []

    def llm(request):
        attempts.append(request)
        sender = request.get_response_sender()
        sender.send(glue.response({P.TEXT_OUTPUT: codecs.text_tensor("Hel", batch=True)}))
        if len(attempts) == 1:
            sender.send(error(UNHEALTHY.format(P.LLM)), FINAL)
        else:
            sender.send(glue.response({P.TEXT_OUTPUT: codecs.text_tensor("lo", batch=True)}), FINAL)

    triton.model(P.LLM, llm)
    pieces = []
    text = bls.TritonLlm().generate(GenerationRequest("Hallo"), on_piece=pieces.append)
    assert text == "Hello" and len(attempts) == 2
    assert "".join(pieces) == text


def test_yes_probability_reads_its_output_and_says_when_there_is_none(triton, bls):
    answer = {P.TEXT_OUTPUT: codecs.text_tensor("Yes", batch=True), P.YES_PROBABILITY: np.array([[0.75]], np.float32)}
    triton.model(P.LLM, lambda request: [answer])
    assert bls.TritonLlm().yes_probability("Fertig?") == 0.75
    call = triton.calls[0]
    assert call.inputs[P.RETURN_YES_PROBABILITY].tolist() == [[True]] and P.STREAM not in call.inputs
    assert call.requested == [P.TEXT_OUTPUT, P.YES_PROBABILITY]
    triton.model(P.LLM, lambda request: [{P.TEXT_OUTPUT: codecs.text_tensor("Yes", batch=True)}])
    with pytest.raises(bls.StageError, match="no yes_probability"):
        bls.TritonLlm().yes_probability("Fertig?")


def test_partials_move_to_whisper_for_good_when_the_server_has_no_whisper_partial(triton, bls):
    triton.model(
        P.WHISPER, lambda request: codecs.transcription_to_tensors(Transcription("Hallo", "de", 0.1, -0.2, 1.1))
    )
    stages = bls.TritonStages()
    request = AsrRequest(np.ones(160, np.float32), "de", beam_size=1)
    assert stages.whisper(request, partial=True).text == "Hallo"
    assert stages.whisper(request, partial=True).text == "Hallo"
    assert [c.model for c in triton.calls] == [P.WHISPER_PARTIAL, P.WHISPER, P.WHISPER]


def test_a_whisper_partial_that_fails_otherwise_is_an_error_and_not_moved(triton, bls):
    triton.model(P.WHISPER_PARTIAL, lambda request: error("whisper failed: CUDA out of memory"))
    triton.model(P.WHISPER, lambda request: codecs.transcription_to_tensors(Transcription("x", "de", 0, 0, 1)))
    with pytest.raises(bls.StageError, match="CUDA out of memory"):
        bls.TritonStages().whisper(AsrRequest(np.ones(160, np.float32)), partial=True)
    assert [c.model for c in triton.calls] == [P.WHISPER_PARTIAL]


def test_a_stateless_stage_whose_stub_missed_a_heartbeat_is_asked_again(triton, bls, monkeypatch):
    monkeypatch.setattr(bls, "stub_alive", lambda instance: True)
    answers = [error(UNHEALTHY.format(P.COMPLETENESS)), codecs.completeness_to_tensors(True, 0.9)]
    triton.model(P.COMPLETENESS, lambda request: answers.pop(0))
    assert bls.TritonStages().is_complete("Hallo Welt.", "de") is True
    assert len(triton.calls) == 2
    assert any("completeness answered 'not healthy'" in message for _, message in triton.log)
    assert triton.model_control == []  # a live stub is not reloaded


def test_a_stateful_stage_is_never_asked_again(triton, bls, monkeypatch):
    monkeypatch.setattr(bls, "stub_alive", lambda instance: True)
    triton.model(P.VAD, lambda request: error(UNHEALTHY.format(P.VAD)))
    with pytest.raises(bls.StageError, match="not healthy"):
        bls.TritonStages().vad(3, np.zeros(160, np.float32), True, False)
    assert len(triton.calls) == 1


def test_a_dead_stub_is_reloaded_once_within_the_interval(triton, bls):
    triton.model(P.WHISPER, lambda request: error("unused"))
    healer = bls.StageHealer(min_interval_s=60.0)
    healer.saw("whisper failed: something else")
    healer.saw(UNHEALTHY.format(P.WHISPER))  # no such stub process on this machine: it is dead
    give_up = time.monotonic() + 2.0
    while len(triton.model_control) < 2 and time.monotonic() < give_up:
        time.sleep(0.005)
    healer.saw(UNHEALTHY.format(P.WHISPER))
    time.sleep(0.02)
    assert triton.model_control == [("unload", P.WHISPER), ("load", P.WHISPER)]
    assert ("WARNING", "livetranslate: reloaded whisper: its stub process had died") in triton.log


def test_sequence_stages_carry_their_sequence_id_and_start_and_end_flags(triton, glue, bls):
    seen = []

    def vad(request):
        seen.append(glue.sequence_flags(request))
        return codecs.boundaries_to_tensors(Boundaries())

    triton.model(P.VAD, vad)
    stages = bls.TritonStages()
    for start, end in ((True, False), (False, False), (False, True)):
        stages.vad(7, np.zeros(160, np.float32), start, end)
    assert [(c.correlation_id, c.flags) for c in triton.calls] == [
        (7, P.FLAG_SEQUENCE_START),
        (7, 0),
        (7, P.FLAG_SEQUENCE_END),
    ]
    assert seen == [(7, True, False), (7, False, False), (7, False, True)]
    with pytest.raises(bls.StageError, match="must specify the START flag"):  # Triton's own refusal
        stages.vad(7, np.zeros(160, np.float32), False, False)


def test_ending_a_pipeline_sequence_sends_its_end_and_reads_to_the_final_flag(triton, glue, bls):
    seen = []

    def pipeline(request):
        seen.append((glue.sequence_flags(request), glue.is_internal(request), glue.get(request, P.AUDIO)))
        reply = glue.DecoupledReply(request)
        reply.send(Event(EventKind.END))
        reply.close()

    triton.model(P.PIPELINE, pipeline).open_sequences.add(42)  # the client's stream 42 is open
    bls.end_pipeline_sequence(42)
    (call,) = triton.calls
    assert call.decoupled and call.finished and call.flags == P.FLAG_SEQUENCE_END
    (flags, is_internal, audio) = seen[0]
    assert flags == (42, False, True) and is_internal and audio.dtype == np.int16 and audio.size == 0
    bls.end_pipeline_sequence(42)  # gone already: Triton refuses, and nothing is raised
    assert triton.calls[1].finished and triton.calls[1].responses[0].has_error()


def test_the_vad_model_py_answers_a_stream_through_bls_and_refuses_an_outsider(triton, bls):
    triton.model_py(P.VAD)
    stages = bls.TritonStages()
    silence = np.zeros(8000, np.float32)
    assert stages.vad(11, silence, True, False) == Boundaries()
    assert stages.vad(11, silence, False, True) == Boundaries()
    outsider = fake_pb_utils.InferenceRequest(
        correlation_id=12,
        flags=P.FLAG_SEQUENCE_START,
        inputs=[fake_pb_utils.Tensor(P.AUDIO, silence)],
        requested_output_names=[],
        model_name=P.VAD,
        parameters={P.INTERNAL_PARAMETER: "guessed"},
    )
    response = outsider.exec()
    assert response.has_error() and "vad: model 'vad' is internal to the server" in response.error().message()


# --- (3) glue: what a model.py reads and sends ----------------------------------------------------
def test_a_models_parameters_and_sequence_idle_time_are_read_from_its_config(triton, glue):
    args = triton.args(P.VAD)
    assert glue.parameters(args) == {"mode": "3", "frame_ms": "30", "padding_ms": "300", "max_utterance_s": "15"}
    assert glue.sequence_idle_s(args) == 120.0
    assert glue.sequence_idle_s(triton.args(P.ENHANCE)) == 600.0
    assert glue.parameters(triton.args(P.WHISPER))["min_window_s"] == "15"


def test_sequence_flags_come_from_the_control_inputs_or_else_the_correlation_id(glue):
    controls = {
        "CORRID": np.array([9], np.uint64),
        "START": np.array([1], np.int32),
        "END": np.array([0], np.int32),
    }
    assert glue.sequence_flags(make_request(controls, correlation_id=3)) == (9, True, False)
    assert glue.sequence_flags(make_request({"END": np.array([1], np.int32)}, correlation_id=3)) == (3, False, True)
    assert glue.sequence_flags(make_request({}, correlation_id=5)) == (5, False, False)


def test_the_internal_check_lets_the_servers_token_in_and_turns_others_away(glue):
    glue.check_internal(internal(), P.WHISPER)
    assert glue.is_internal(internal())
    for parameters in (
        {},
        {P.INTERNAL_PARAMETER: "wrong"},
        {P.INTERNAL_PARAMETER: TOKEN.upper()},
        {P.INTERNAL_PARAMETER: 5},
    ):
        with pytest.raises(
            P.ProtocolError, match="model 'whisper' is internal to the server: clients stream to 'pipeline'"
        ):
            glue.check_internal(make_request(parameters=parameters), P.WHISPER)
        assert not glue.is_internal(make_request(parameters=parameters))


def test_a_server_without_a_token_lets_no_one_into_its_internal_models(glue, monkeypatch):
    monkeypatch.delenv(P.INTERNAL_TOKEN_ENV)
    for parameters in ({}, {P.INTERNAL_PARAMETER: ""}, {P.INTERNAL_PARAMETER: TOKEN}):
        with pytest.raises(P.ProtocolError, match="this server has no internal token"):
            glue.check_internal(make_request(parameters=parameters), P.LLM)


def test_a_request_parameter_or_client_key_is_read_or_its_default(glue):
    assert glue.client_key(make_request(parameters={P.GRPC_API_KEY_HEADER: "grpc-key"})) == "grpc-key"
    assert glue.client_key(make_request(parameters={P.API_KEY_HEADER: "http-key"})) == "http-key"
    assert glue.client_key(make_request(parameters={P.API_KEY_HEADER: 7})) == ""
    assert glue.client_key(make_request()) == ""
    assert (
        glue.request_parameter(make_request(parameters={P.LLM_LANE_PARAMETER: "fast"}), P.LLM_LANE_PARAMETER) == "fast"
    )
    assert glue.request_parameter(make_request(), P.LLM_LANE_PARAMETER, "background") == "background"


def test_each_request_gets_its_own_response_and_one_bad_request_does_not_take_the_others_down(glue):
    def answer(request):
        text = codecs.text(glue.inputs(request), P.TEXT)
        if text == "boom":
            raise RuntimeError("the checker broke")
        return codecs.completeness_to_tensors(text.endswith("."), 0.5)

    good, outsider, bad = (
        internal({P.TEXT: codecs.text_tensor("Fertig.")}),
        make_request({P.TEXT: codecs.text_tensor("Fertig.")}),
        internal({P.TEXT: codecs.text_tensor("boom")}),
    )
    responses = glue.respond_each([good, outsider, bad], answer, P.COMPLETENESS)
    assert len(responses) == 3 and not responses[0].has_error()
    assert outputs(responses[0])[P.COMPLETE].tolist() == [True]
    assert responses[1].error().message().startswith("completeness: model 'completeness' is internal")
    assert responses[2].error().message() == "completeness: the checker broke"
    assert outputs(responses[1]) == outputs(responses[2]) == {}
    public = glue.respond_each([outsider], answer, P.SESSIONS, internal=False)
    assert not public[0].has_error()


def test_a_decoupled_answer_goes_out_response_by_response_then_the_final_flag_alone(glue):
    request = internal()
    glue.respond_decoupled(request, lambda: iter([{P.TEXT_OUTPUT: codecs.text_tensor(w)} for w in ("a", "b")]), P.LLM)
    assert request.sender.flags() == [0, 0, FINAL]
    assert request.sender.sent[-1][0] is None
    assert [o[P.TEXT_OUTPUT].tolist() for o in request.sender.outputs()] == [[b"a"], [b"b"]]


def test_a_decoupled_failure_is_one_error_response_that_carries_the_final_flag(glue):
    def produce():
        yield {P.TEXT_OUTPUT: codecs.text_tensor("a")}
        raise ValueError("text_input is empty")

    request = internal()
    glue.respond_decoupled(request, produce, P.LLM)
    assert request.sender.flags() == [0, FINAL]
    last = request.sender.responses()[-1]
    assert last.has_error() and last.error().message() == "llm: text_input is empty"


def test_a_streaming_answer_sends_its_interims_then_the_answer_with_the_final_flag(glue):
    def answer(send):
        send(codecs.translation_to_tensors("Hel", interim=True))
        return codecs.translation_to_tensors("Hello")

    request = internal()
    glue.respond_streaming(request, answer, P.TRANSLATE)
    assert request.sender.flags() == [0, FINAL]
    assert [codecs.translation_from([o]) for o in request.sender.outputs()] == [
        codecs.Translated("Hel", interim=True),
        codecs.Translated("Hello"),
    ]
    outsider = make_request()
    glue.respond_streaming(outsider, answer, P.TRANSLATE)
    assert outsider.sender.flags() == [FINAL]
    assert "translate: model 'translate' is internal" in outsider.sender.responses()[0].error().message()


def test_a_streaming_answer_that_cannot_be_sent_still_ends_the_stream_with_an_error(glue):
    request = internal()
    glue.respond_streaming(request, lambda send: {P.TRANSLATION: np.array(["numpy unicode"])}, P.TRANSLATE)
    assert request.sender.flags() == [FINAL] and request.sender.responses()[0].has_error()


def test_a_decoupled_reply_sends_events_until_it_closes_and_closes_once(glue):
    request = make_request()
    reply = glue.DecoupledReply(request)
    reply.send(Event(EventKind.TRANSCRIPT, "Hallo", 1))
    assert not reply.is_cancelled()
    request.sender.cancelled = True
    assert reply.is_cancelled()
    reply.close()
    reply.send(Event(EventKind.TRANSCRIPT, "zu spät", 2))
    reply.close()
    assert request.sender.flags() == [0, FINAL]
    assert Event.from_tensors(request.sender.outputs()[0].get).text == "Hallo"


def test_the_bls_calls_made_for_a_request_carry_on_what_its_caller_still_waits(triton, glue, bls):
    triton.model(P.COMPLETENESS, lambda request: codecs.completeness_to_tensors(True, 0.9))

    def answer(request):
        bls.TritonStages().is_complete("Hallo", "de")
        return {}

    glue.respond_each([internal(timeout=3_000_000), internal()], answer, P.ENHANCE)
    assert 2_000_000 < triton.calls[0].timeout <= 3_000_000
    assert triton.calls[1].timeout == 0


def test_work_for_a_caller_that_stopped_waiting_is_dropped(triton, glue, bls):
    triton.model(P.COMPLETENESS, lambda request: codecs.completeness_to_tensors(True, 0.9))

    def answer(request):
        time.sleep(0.01)  # queued behind other work past the caller's 1 ms
        return codecs.completeness_to_tensors(bls.TritonStages().is_complete("Hallo", "de"), 1.0)

    (response,) = glue.respond_each([internal(timeout=1000)], answer, P.ENHANCE)
    assert "a call to completeness: dropped, its caller stopped waiting" in response.error().message()
    assert triton.calls == []


# --- (4) the pipeline's metrics as Triton custom metrics ----------------------------------------
def test_every_family_and_label_set_is_a_triton_metric_from_the_start_at_zero(triton, triton_metrics):
    sink = triton_metrics.TritonMetrics()
    kinds = {M.COUNTER: "counter", M.GAUGE: "gauge", M.HISTOGRAM: "histogram"}
    assert {name: (help, kind.value) for name, (help, kind) in triton.families.items()} == {
        f.name: (f.help, kinds[f.kind]) for f in FAMILIES
    }
    assert len(triton.series) == sum(len(f.label_sets()) for f in FAMILIES)
    for family in FAMILIES:
        for labels in family.label_sets():
            series = triton.metric(family.name, **labels)
            assert (series.value, series.observed) == (0.0, [])
            assert series.buckets == (list(family.buckets) if family.kind == M.HISTOGRAM else None)
    sink.close()


def test_what_the_pipeline_reports_lands_in_its_triton_series(triton, triton_metrics):
    sink = triton_metrics.TritonMetrics()
    sink.refused("stream", "server_full")
    sink.refused("stream", "server_full")
    sink.refused("viewer", "draining")
    sink.sent(Event(EventKind.TRANSCRIPT, "Hallo", latency_ms=1500))
    sink.sent(Event(EventKind.TRANSLATION, "", latency_ms=900, error="the llm fell over"))  # not a latency
    sink.sent(Event(EventKind.ERROR, "x", latency_ms=5))  # a kind without a latency
    with sink.storing(EventKind.TRANSCRIPT):
        pass
    with pytest.raises(OSError), sink.storing(EventKind.TRANSLATION):
        raise OSError("disk full")
    sink.gauges(
        Gauges(
            streams=2,
            viewers=3,
            queued_audio_s=1.25,
            translation_backlog=4,
            translation_lag_s=3.5,
            llm_breaker_open=True,
        )
    )
    assert triton.metric("livetranslate_refused_streams_total", reason="server_full").value == 2
    assert triton.metric("livetranslate_refused_viewers_total", reason="draining").value == 1
    assert triton.metric("livetranslate_refused_viewers_total", reason="server_full").value == 0
    latency = {k.value: triton.metric(M.EVENT_LATENCY.name, kind=k.value).observed for k in M.LATENCY_KINDS}
    assert latency == {"partial": [], "transcript": [1.5], "translation": [], "enhanced": []}
    assert triton.metric(M.EVENTS_STORED.name, kind="transcript").value == 1
    assert triton.metric(M.EVENTS_STORED.name, kind="translation").value == 0
    assert triton.metric(M.STORE_FAILURES.name).value == 1
    gauges = {f.name: triton.metric(f.name).value for f in FAMILIES if f.kind == M.GAUGE}
    assert gauges == {
        "livetranslate_active_streams": 2,
        "livetranslate_active_viewers": 3,
        "livetranslate_queued_audio_max_seconds": 1.25,
        "livetranslate_translation_backlog": 4,
        "livetranslate_translation_lag_seconds": 3.5,
        "livetranslate_llm_breaker_open": 1.0,
        "livetranslate_llm_background_breaker_open": 0.0,
    }
    sink.close()


def test_a_metric_that_cannot_be_reported_is_logged_and_never_raised(triton, triton_metrics, caplog):
    sink = triton_metrics.TritonMetrics()
    with caplog.at_level(logging.WARNING, logger="livetranslate.pipeline.metrics"):
        sink.refused("stream", "no such reason")
        sink.increment(M.STORE_FAILURES, by=-1)  # Triton refuses to take a counter down
    assert "no metric livetranslate_refused_streams_total{'reason': 'no such reason'}" in caplog.text
    assert "counters cannot be decremented" in caplog.text
    assert triton.metric(M.STORE_FAILURES.name).value == 0
    sink.close()


def test_the_families_outlive_their_metrics_and_go_after_them(triton, triton_metrics):
    sink = triton_metrics.TritonMetrics()
    gc.collect()  # nothing but the sink holds the families
    sink.refused("viewer", "no_key")
    assert triton.metric("livetranslate_refused_viewers_total", reason="no_key").value == 1
    sink.close()
    gc.collect()
    assert triton.metric_errors == []
    sink.refused("viewer", "no_key")  # after close: nothing reported, nothing raised
    assert triton.metric("livetranslate_refused_viewers_total", reason="no_key").value == 1


def test_the_fake_goes_in_for_a_test_and_what_was_there_before_comes_back():
    before = {name: sys.modules.get(name) for name in (fake_pb_utils.MODULE, *fake_pb_utils.LAYER)}
    layers = []
    for _ in range(2):
        with fake_pb_utils.installed() as server:
            assert sys.modules[fake_pb_utils.MODULE] is server.module
            layers.append(importlib.import_module("livetranslate.triton.glue"))
            assert layers[-1].pb_utils is server.module
            with pytest.raises(RuntimeError, match="installed already"), fake_pb_utils.installed():
                pass
        assert {name: sys.modules.get(name) for name in before} == before
    assert layers[0] is not layers[1]  # imported afresh against each fake
