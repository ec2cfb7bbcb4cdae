"""Every config.pbtxt parses as a Triton ModelConfig (the protobuf tritonclient ships) and
agrees with the package: folder name = model name, tensor names from protocol.py."""

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from livetranslate import glossary
from livetranslate import protocol as P
from livetranslate.launcher import PROFILE_MODELS

REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
CONFIGS = sorted(REPOSITORY.glob("*/config.pbtxt")) + sorted(REPOSITORY.glob("*/configs/*.pbtxt"))


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_config_parses_and_names_its_folder(path):
    config = parse(path)
    model_dir = path.parent if path.name == "config.pbtxt" else path.parent.parent
    assert config.name == model_dir.name
    assert config.backend == "python" or config.platform == "ensemble"
    if config.backend == "python":
        assert (model_dir / "1" / "model.py").is_file()


def test_the_launcher_loads_every_model_in_the_repository():
    assert sorted(PROFILE_MODELS["cpu"]) == sorted(p.parent.name for p in REPOSITORY.glob("*/config.pbtxt"))


def test_the_partial_whisper_is_whisper_at_idle_priority():
    """Same glue, same tensors as `whisper`; only the priority and the default beam differ."""
    whisper, partial = (parse(REPOSITORY / name / "config.pbtxt") for name in (P.WHISPER, P.WHISPER_PARTIAL))
    assert (REPOSITORY / P.WHISPER_PARTIAL / "1" / "model.py").resolve() == (REPOSITORY / P.WHISPER / "1" / "model.py")
    assert list(partial.input) == list(whisper.input) and list(partial.output) == list(whisper.output)
    differ = {
        k
        for k in set(whisper.parameters) | set(partial.parameters)
        if whisper.parameters[k].string_value != partial.parameters[k].string_value
    }
    assert differ == {"beam_size", "cpu_priority"}
    assert partial.parameters["cpu_priority"].string_value == "idle"
    assert P.WHISPER_PARTIAL not in PROFILE_MODELS["gpu"]


def test_tensor_names_come_from_the_protocol():
    names = {v for k, v in vars(P).items() if k.isupper() and isinstance(v, str)}
    for path in REPOSITORY.glob("*/config.pbtxt"):
        config = parse(path)
        tensors = [t.name for t in config.input] + [t.name for t in config.output]
        controls = [c.name for c in config.sequence_batching.control_input]
        assert set(tensors) <= names, (path, set(tensors) - names)
        assert set(controls) <= {"START", "END", "CORRID"}


def test_pipeline_io_matches_the_event_and_session_tensors():
    config = parse(REPOSITORY / "pipeline" / "config.pbtxt")
    outputs = {t.name for t in config.output}
    event = P.Event(P.EventKind.END).to_tensors()
    assert outputs == set(event)
    inputs = {t.name for t in config.input}
    # a glossary is sent only when there is one: a client without one still talks to older servers
    # and speaker labels only when asked for
    with_all = P.SessionOptions("s", glossary=glossary.parse("Zorvexa"), speakers=True, num_speakers=3, store=False)
    assert set(with_all.to_tensors()) | {P.AUDIO, P.SUBSCRIBE, P.SESSION_ACTION, P.DRAIN, P.DRAIN_GRACE_S} == inputs
    plain = P.SessionOptions("s").to_tensors()
    assert not {P.GLOSSARY, P.SPEAKERS, P.NUM_SPEAKERS, P.STORE} & set(plain)
    again = P.SessionOptions.from_tensors(with_all.to_tensors().get, "x")
    assert again.speakers and again.num_speakers == 3 and not again.store
    assert config.model_transaction_policy.decoupled and config.sequence_batching.HasField("oldest")


def test_streams_touch_their_sequences_well_before_any_idle_timeout():
    """The pipeline's streams hold sequences in vad and enhance and touch each one whenever
    it was quiet for keepalive_s: that must be well under each model's idle timeout."""
    pipeline = parse(REPOSITORY / P.PIPELINE / "config.pbtxt")
    keepalive_s = float(pipeline.parameters["keepalive_s"].string_value)
    for model in (P.VAD, P.ENHANCE):
        idle_s = parse(REPOSITORY / model / "config.pbtxt").sequence_batching.max_sequence_idle_microseconds / 1e6
        assert 0 < keepalive_s <= idle_s / 3, (model, keepalive_s, idle_s)


def test_translate_and_llm_agree_on_the_small_model_and_translate_streams_in_both_profiles():
    def params(path):
        return {k: v.string_value for k, v in parse(path).parameters.items()}

    cpu_llm, cpu_translate = (REPOSITORY / P.LLM / "config.pbtxt", REPOSITORY / P.TRANSLATE / "config.pbtxt")
    assert params(cpu_llm)["fast_model"] == params(cpu_translate)["fast_llm_model"] != ""
    gpu_translate = REPOSITORY / P.TRANSLATE / "configs" / "gpu.pbtxt"
    assert params(gpu_translate)["fast_llm_model"] == ""  # TensorRT-LLM batches everything in flight
    for path in (cpu_translate, gpu_translate):
        config = parse(path)
        assert config.model_transaction_policy.decoupled
        assert {i.name for i in config.input} >= {P.URGENT, P.FAST, P.INTERIM}
        assert [o.name for o in config.output] == [P.TRANSLATION, P.INTERIM, P.FAST_USED]
    assert "translation_budget_s" in params(REPOSITORY / P.PIPELINE / "config.pbtxt")
