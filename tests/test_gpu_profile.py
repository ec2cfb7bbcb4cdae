"""What can be proven of the gpu profile without a GPU: its configs, the ensemble's wiring,
the engine build's command lines and version checks, the launcher's model lists, and the
numpy Whisper front end against faster-whisper's own feature extractor and tokenizer."""

import json
import re
import types
from pathlib import Path

import numpy as np
import pytest

from engine_build import build, llm_configs, versions
from livetranslate import protocol as P
from livetranslate.launcher import CPU_ONLY_MODELS, GPU_ONLY_MODELS, MODELS, PROFILE_MODELS, ServerOptions
from livetranslate.stages.llm import tensorrt_llm as llm_trt
from livetranslate.stages.whisper import create_engine
from livetranslate.stages.whisper import features as F
from livetranslate.stages.whisper import tensorrt_llm as trt
from livetranslate.weights.trtllm_version import VersionMismatch, check_engine_version

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = ROOT / "model_repository"


def parse(path: Path):
    return llm_configs.parse(path.read_text())


def io(config) -> dict:
    return llm_configs.interface_of(config)


# --- configs --------------------------------------------------------------------------------
def test_models_with_a_gpu_config_keep_the_cpu_io():
    """translate, completeness and enhance call whisper and llm by name: the gpu configs must
    answer the same tensors (llm: the ensemble serves every input and output the cpu llm has)."""
    for gpu in REPOSITORY.glob("*/configs/gpu.pbtxt"):
        folder = gpu.parent.parent
        if not (folder / "config.pbtxt").is_file():
            continue
        cpu, ours = io(parse(folder / "config.pbtxt")), io(parse(gpu))
        assert ours == cpu, folder.name


def test_gpu_only_folders_have_no_default_config_and_load_only_in_the_gpu_profile():
    gpu_only = sorted(
        p.parent.parent.name
        for p in REPOSITORY.glob("*/configs/gpu.pbtxt")
        if not (p.parent.parent / "config.pbtxt").exists()
    )
    assert gpu_only == ["yes_probability"]  # the tensorrtllm_backend members are filled at image build
    assert set(gpu_only) <= set(GPU_ONLY_MODELS)
    assert set(GPU_ONLY_MODELS).isdisjoint(MODELS)
    assert PROFILE_MODELS["cpu"] == MODELS + CPU_ONLY_MODELS
    # the cpu-only folders have no gpu config: the gpu profile never loads them
    assert not any((REPOSITORY / name / "configs" / "gpu.pbtxt").exists() for name in CPU_ONLY_MODELS)


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_launcher_loads_the_profiles_models(profile, tmp_path):
    command = ServerOptions(profile=profile).command(tmp_path)
    loaded = [a.split("=", 1)[1] for a in command if a.startswith("--load-model=")]
    assert loaded == list(PROFILE_MODELS[profile])
    assert ("--model-config-name=gpu" in command) == (profile == "gpu")


def test_the_gpu_ensemble_is_wired_to_its_members():
    """Every step maps existing member inputs and outputs of the same type and shape, every
    required member input is fed, every tensor is produced before it is read, and the ensemble
    outputs come from some step."""
    ensemble = parse(REPOSITORY / "llm" / "configs" / "gpu.pbtxt")
    assert ensemble.platform == "ensemble" and ensemble.name == "llm"
    interface = json.loads(llm_configs.INTERFACE.read_text())
    assert interface["tensorrtllm_backend"] == versions.TENSORRTLLM_BACKEND_TAG
    interface["yes_probability"] = io(parse(REPOSITORY / "yes_probability" / "configs" / "gpu.pbtxt"))
    members_batch = {"yes_probability": parse(REPOSITORY / "yes_probability" / "configs" / "gpu.pbtxt").max_batch_size}
    assert members_batch["yes_probability"] >= ensemble.max_batch_size
    ens_io = io(ensemble)
    tensors = dict(ens_io["inputs"])  # ensemble tensor -> spec, as they become available
    for step in ensemble.ensemble_scheduling.step:
        member = interface[step.model_name]
        for key, tensor in step.input_map.items():
            assert key in member["inputs"], (step.model_name, key)
            assert tensor in tensors, f"{step.model_name}.{key} reads {tensor} before anything writes it"
            want, have = member["inputs"][key], tensors[tensor]
            assert want["data_type"] == have["data_type"], (step.model_name, key)
            assert _dims_fit(have["dims"], want["dims"]), (step.model_name, key, have, want)
            if not want.get("optional"):
                assert not have.get("optional"), f"{step.model_name}.{key} is required but {tensor} is optional"
        required = {k for k, v in member["inputs"].items() if not v.get("optional")}
        assert required <= set(step.input_map), (step.model_name, required - set(step.input_map))
        for key, tensor in step.output_map.items():
            assert key in member["outputs"], (step.model_name, key)
            spec = dict(member["outputs"][key])
            if step.model_name == "tensorrt_llm" and key == "generation_logits":
                spec["optional"] = True  # only produced when the request asks for it
            tensors[tensor] = spec
    for name, spec in ens_io["outputs"].items():
        assert name in tensors, f"no step produces the ensemble output {name}"
        assert tensors[name]["data_type"] == spec["data_type"]


def _dims_fit(have, want) -> bool:
    return len(have) == len(want) and all(h == w or -1 in (h, w) for h, w in zip(have, want))


def test_the_optional_logits_reach_yes_probability_only_as_an_optional_input():
    """The tensorrt_llm backend leaves generation_logits out unless asked; Triton (2.54) then
    runs the next step without that input only if it is optional there."""
    config = io(parse(REPOSITORY / "yes_probability" / "configs" / "gpu.pbtxt"))
    assert config["inputs"][P.GENERATION_LOGITS].get("optional")
    assert not config["inputs"][P.SEQUENCE_LENGTH].get("optional")


def test_gpu_paths_agree_with_the_engine_build_defaults():
    params = parse(REPOSITORY / "whisper" / "configs" / "gpu.pbtxt").parameters
    whisper = {key: value.string_value for key, value in params.items()}
    assert whisper["engine"] == "tensorrt_llm"
    assert whisper["model"] == build.WhisperBuild().output_dir
    assert int(whisper["beam_size"]) <= build.WhisperBuild().max_beam_width
    yes = parse(REPOSITORY / "yes_probability" / "configs" / "gpu.pbtxt").parameters["tokenizer_dir"].string_value
    assert yes == build.LlamaBuild().output_dir == llm_configs.LlmServing().engine_dir
    for name in ("translate", "completeness"):
        assert parse(REPOSITORY / name / "configs" / "gpu.pbtxt").parameters["prompt_family"].string_value == "llama3"


# --- pinned versions --------------------------------------------------------------------------
def test_the_dockerfile_pins_the_same_release_as_engine_build():
    text = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    assert args["TRITON_IMAGE"] == versions.TRITON_IMAGE
    assert args["TRITON_IMAGE_TAG"] == versions.TRITON_IMAGE_TAG
    assert args["TENSORRTLLM_BACKEND_TAG"] == versions.TENSORRTLLM_BACKEND_TAG
    assert args["TENSORRT_LLM_TAG"] == versions.TENSORRT_LLM_TAG
    assert versions.TENSORRT_LLM_TAG == f"v{versions.TENSORRT_LLM_VERSION}"


def test_the_build_refuses_another_tensorrt_llm():
    versions.check_build_version("0.17.0")
    versions.check_build_version("0.17.0.post1")
    with pytest.raises(VersionMismatch, match="0.16.0 is installed here but the server runs 0.17.0"):
        versions.check_build_version("0.16.0")
    with pytest.raises(VersionMismatch, match="not installed"):
        versions.check_build_version(None)
    with pytest.raises(VersionMismatch):
        build.main(["llama"]) if versions.installed_tensorrt_llm() is None else versions.check_build_version("0.1.0")


def test_an_engine_from_another_tensorrt_llm_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"version": "0.16.0", "build_config": {}}))
    with pytest.raises(VersionMismatch, match="built by TensorRT-LLM 0.16.0 but this server runs 0.17.0"):
        check_engine_version(tmp_path, "0.17.0")
    check_engine_version(tmp_path, "0.16.0")
    with pytest.raises(VersionMismatch, match="not a TensorRT-LLM engine"):
        check_engine_version(tmp_path / "missing", "0.17.0")


# --- engine build dry run -------------------------------------------------------------------
def dry_run(capsys, *argv) -> list[str]:
    assert (
        build.main(["--dry-run", "--tensorrt-llm-sources", "/src/trtllm", "--backend-sources", "/src/backend", *argv])
        == 0
    )
    return capsys.readouterr().out.strip().splitlines()


def test_whisper_dry_run_has_the_seed_settings(capsys):
    convert, encoder, decoder, tokenizer = dry_run(capsys, "whisper")
    assert convert.endswith(
        "/src/trtllm/examples/whisper/convert_checkpoint.py --model_dir /models/downloads --model_name large-v3 "
        "--dtype float16 --output_dir /models/build/whisper-large-v3-checkpoint --use_weight_only --weight_only_precision int8"
    )
    assert encoder == (
        "trtllm-build --checkpoint_dir /models/build/whisper-large-v3-checkpoint/encoder "
        "--output_dir /models/engines/whisper-large-v3/encoder --moe_plugin disable --max_batch_size 8 "
        "--gemm_plugin disable --bert_attention_plugin float16 --max_input_len 3000 --max_seq_len 3000"
    )
    assert decoder == (
        "trtllm-build --checkpoint_dir /models/build/whisper-large-v3-checkpoint/decoder "
        "--output_dir /models/engines/whisper-large-v3/decoder --moe_plugin disable --max_beam_width 4 "
        "--max_batch_size 8 --max_seq_len 114 --max_input_len 14 --max_encoder_input_len 3000 "
        "--gemm_plugin float16 --bert_attention_plugin float16 --gpt_attention_plugin float16 --gather_context_logits"
    )
    assert tokenizer == (
        "cp /models/downloads/whisper-large-v3/tokenizer.json /models/engines/whisper-large-v3/tokenizer.json"
    )


def test_whisper_dry_run_takes_overrides(capsys):
    convert, encoder, decoder, _ = dry_run(
        capsys,
        "whisper",
        "--max-batch-size",
        "16",
        "--max-beam-width",
        "1",
        "--weight-only-precision",
        "",
        "--decoder-max-input-len",
        "64",
        "--decoder-max-seq-len",
        "224",
        "--no-gather-context-logits",
        "--output-dir",
        "/e/w",
    )
    assert "--use_weight_only" not in convert
    assert "--max_batch_size 16" in encoder and "--output_dir /e/w/encoder" in encoder
    assert "--max_beam_width 1 --max_batch_size 16 --max_seq_len 224 --max_input_len 64" in decoder
    assert "--gather_context_logits" not in decoder


def test_whisper_checkpoint_name_and_model_name_must_agree(capsys):
    with pytest.raises(SystemExit, match="pass --model-name large-v3-turbo"):
        dry_run(capsys, "whisper", "--checkpoint", "/models/downloads/large-v3-turbo.pt")
    convert = dry_run(capsys, "whisper", "--checkpoint", "/c/large-v3-turbo.pt", "--model-name", "large-v3-turbo")[0]
    assert "--model_dir /c --model_name large-v3-turbo" in convert


def test_llama_dry_run_has_the_seed_settings_and_overrides(capsys):
    convert, engine, tokenizer = dry_run(capsys, "llama")
    assert convert.endswith(
        "/src/trtllm/examples/llama/convert_checkpoint.py --model_dir /models/downloads/Meta-Llama-3.1-8B-Instruct "
        "--output_dir /models/build/llama-3.1-8b-instruct-checkpoint --dtype float16 "
        "--use_weight_only --weight_only_precision int4"
    )
    assert engine == (
        "trtllm-build --checkpoint_dir /models/build/llama-3.1-8b-instruct-checkpoint "
        "--output_dir /models/engines/llama-3.1-8b-instruct --gemm_plugin float16 --max_batch_size 8 "
        "--max_input_len 1000 --max_seq_len 2000 --use_paged_context_fmha enable --gather_generation_logits"
    )
    assert tokenizer.startswith("cp /models/downloads/Meta-Llama-3.1-8B-Instruct/tokenizer.json")
    _, engine, _ = dry_run(
        capsys,
        "llama",
        "--max-input-len",
        "1500",
        "--max-seq-len",
        "3000",
        "--no-use-paged-context-fmha",
        "--weight-only-precision",
        "int8",
    )
    assert "--max_input_len 1500 --max_seq_len 3000 --use_paged_context_fmha disable" in engine


def test_llm_configs_dry_run_fills_every_member(capsys):
    lines = dry_run(
        capsys,
        "llm-configs",
        "--repository",
        "/r",
        "--engine-dir",
        "/e/llama",
        "--kv-cache-free-gpu-mem-fraction",
        "0.4",
    )
    assert [line.split()[3] for line in lines] == [f"/r/{m}/configs/gpu.pbtxt" for m in llm_configs.MEMBERS]
    assert all(line.split()[1] == "/src/backend/tools/fill_template.py" for line in lines)
    trtllm = dict(kv.split(":", 1) for kv in lines[1].split()[4].split(","))
    assert trtllm["engine_dir"] == "/e/llama" and trtllm["decoupled_mode"] == "True"
    assert trtllm["kv_cache_free_gpu_mem_fraction"] == "0.4" and trtllm["logits_datatype"] == "TYPE_FP32"
    assert "add_special_tokens:False" in lines[0]


def test_filled_configs_are_checked_against_the_interface(tmp_path):
    """A stand-in of a filled member whose template dropped an input fails the check."""
    interface = json.loads(llm_configs.INTERFACE.read_text())
    for member in llm_configs.MEMBERS:
        spec = interface[member]
        lines = [f'name: "{member}"', 'backend: "python"', "max_batch_size: 8"]
        for kind in ("inputs", "outputs"):
            entries = []
            for name, t in spec[kind].items():
                if member == "preprocessing" and name == "QUERY":
                    continue
                optional = ", optional: true" if t.get("optional") else ""
                entries.append(f'{{ name: "{name}", data_type: {t["data_type"]}, dims: {t["dims"]}{optional} }}')
            lines.append(f"{'input' if kind == 'inputs' else 'output'} [ {', '.join(entries)} ]")
        path = llm_configs.config_path(tmp_path, member)
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(lines) + '\nparameters { key: "x", value: { string_value: "${unset}" } }\n')
    with pytest.raises(ValueError, match="preprocessing: input QUERY is None"):
        llm_configs.check_filled(tmp_path)
    path = llm_configs.config_path(tmp_path, "postprocessing")
    path.write_text(path.read_text().replace("max_batch_size: 8", "max_batch_size: ${triton_max_batch_size}"))
    with pytest.raises(ValueError, match=r"postprocessing: unfilled template variables \['triton_max_batch_size'\]"):
        llm_configs.check_filled(tmp_path)


# --- the Whisper front end ------------------------------------------------------------------
def speech_like(seconds: float = 4.0) -> np.ndarray:
    """A German sample from samples.py would need espeak-ng: a chirp with noise and silence
    exercises the same arithmetic (loud, quiet and silent frames)."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * F.SAMPLE_RATE)) / F.SAMPLE_RATE
    audio = 0.4 * np.sin(2 * np.pi * (200 + 600 * t) * t) * (t % 1.0 < 0.6) + 0.01 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("seconds", [0.5, 4.0, 31.0])
def test_log_mel_matches_faster_whisper(n_mels, seconds):
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=n_mels)
    audio = speech_like(seconds)
    np.testing.assert_allclose(F.mel_filters(n_mels), extractor.mel_filters, rtol=1e-5, atol=1e-7)
    ours = F.log_mel_spectrogram(audio, n_mels)
    theirs = extractor(audio)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # what the encoder gets: the last 30 s, padded to 3000 frames, (frames, n_mels)
    window = audio[-30 * F.SAMPLE_RATE :]
    expected = pad_or_trim(extractor(window), extractor.nb_max_frames).T
    np.testing.assert_allclose(F.encoder_features(audio, n_mels), expected, atol=1e-4)
    assert F.encoder_features(audio, n_mels).shape == (F.N_FRAMES, n_mels)


@pytest.fixture(scope="module")
def whisper_tokenizer_json() -> Path:
    from livetranslate.weights.catalog import MODELS

    spec = MODELS["whisper-base"]
    if not spec.is_ready():
        pytest.fail("the Whisper base model is not assembled: run scripts/setup.sh (livetranslate models fetch)")
    return spec.path() / "tokenizer.json"


@pytest.mark.parametrize("language", ["de", "en", "fr", "ja"])
def test_prompt_ids_match_whispers_tokenizer(whisper_tokenizer_json, language):
    import tokenizers
    from faster_whisper.tokenizer import Tokenizer

    reference = Tokenizer(
        tokenizers.Tokenizer.from_file(str(whisper_tokenizer_json)), True, task="transcribe", language=language
    )
    ours = F.WhisperTokenizer(whisper_tokenizer_json)
    assert ours.specials.task_sequence(language) == list(reference.sot_sequence) + [reference.no_timestamps]
    assert (ours.specials.eot, ours.specials.sot_prev, ours.specials.no_speech) == (
        reference.eot,
        reference.sot_prev,
        reference.no_speech,
    )
    text = "Guten Morgen zusammen, wir fangen mit dem Bericht an."
    assert ours.encode(" " + text) == reference.encode(" " + text)
    assert ours.decode(reference.encode(" " + text) + [reference.eot]) == reference.decode(reference.encode(" " + text))


def test_full_prompt_matches_faster_whispers_layout(whisper_tokenizer_json):
    import tokenizers
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    reference = Tokenizer(
        tokenizers.Tokenizer.from_file(str(whisper_tokenizer_json)), True, task="transcribe", language="de"
    )
    ours = F.WhisperTokenizer(whisper_tokenizer_json)
    previous, prefix = "Hallo zusammen, wie geht es euch heute?", "Wir fangen an"
    expected = WhisperModel.get_prompt(
        types.SimpleNamespace(max_length=448),
        reference,
        reference.encode(" " + previous),
        without_timestamps=True,
        prefix=prefix,
    )
    prompt = ours.prompt("de", previous, prefix)
    assert prompt.tokens == expected
    assert prompt.tokens[prompt.sot_index] == reference.sot
    assert ours.prompt("de").tokens == list(reference.sot_sequence) + [reference.no_timestamps]


def test_prompt_fits_the_decoder_engine(whisper_tokenizer_json):
    """max_input_len 14 (the seed's decoder): the task sequence always, then the end of the
    committed prefix, then previous text only if room is left."""
    ours = F.WhisperTokenizer(whisper_tokenizer_json)
    task = ours.specials.task_sequence("de")
    prefix = ours.encode(" Wir fangen heute mit dem Bericht aus der Entwicklung an")
    prompt = ours.prompt("de", "Hallo zusammen", "Wir fangen heute mit dem Bericht aus der Entwicklung an", 14)
    assert len(prompt.tokens) == 14 and prompt.sot_index == 0
    assert prompt.tokens == task + prefix[-10:]
    short = ours.prompt("de", "Hallo zusammen", "Gut", 14)
    assert len(short.tokens) <= 14 and short.tokens[0] == ours.specials.sot_prev
    assert short.tokens[short.sot_index : short.sot_index + 4] == task


def test_large_v3_special_ids_move_with_the_extra_language():
    """large-v3 adds <|yue|> after the 99 languages of the older models: the task tokens move
    by one (50360 <|transcribe|>, 50364 <|notimestamps|>); read from the vocabulary, never fixed."""
    from livetranslate.protocol import WHISPER_LANGUAGES

    order = ["en", "zh", "de"] + sorted(WHISPER_LANGUAGES - {"en", "zh", "de", "yue"}) + ["yue"]
    vocab = {"<|endoftext|>": 50257, "<|startoftranscript|>": 50258}
    vocab.update({f"<|{code}|>": 50259 + i for i, code in enumerate(order)})
    after = 50259 + len(order)
    for offset, token in enumerate(
        ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    ):
        vocab[token] = after + offset
    specials = F.SpecialTokens.from_vocabulary(vocab)
    assert specials.task_sequence("de") == [50258, 50261, 50360, 50364]
    assert specials.no_speech == 50363 and specials.language_of(50261) == "de"


# --- decoding helpers of the TensorRT-LLM engine ---------------------------------------------
def test_generated_tokens_drop_the_prompt_and_the_padding():
    prompt = [50258, 50261, 50359, 50363]
    assert trt.generated_tokens(prompt + [10, 11, 50257, 50257], 6, prompt, 50257) == [10, 11]
    assert trt.generated_tokens([10, 11, 50257, 50257], 3, prompt, 50257) == [10, 11]


def test_no_speech_and_logprob():
    logits = np.zeros(6)
    logits[3] = np.log(4.0)
    assert trt.no_speech_probability(logits, 3) == pytest.approx(4 / 9)
    assert trt.no_speech_probability(None, 3) == 0.0
    assert trt.average_logprob(-3.0, 2) == pytest.approx(-1.0)
    assert trt.average_logprob(None, 0) == -10.0


def test_engine_limits_come_from_the_engine_configs(tmp_path):
    for part, config in {
        "encoder": {"pretrained_config": {"n_mels": 128}},
        "decoder": {
            "build_config": {
                "max_input_len": 14,
                "max_seq_len": 114,
                "max_beam_width": 4,
                "max_batch_size": 8,
                "gather_context_logits": True,
            }
        },
    }.items():
        (tmp_path / part).mkdir()
        (tmp_path / part / "config.json").write_text(json.dumps({"version": "0.17.0", **config}))
    limits = trt.EngineLimits.from_engine_dir(tmp_path)
    assert (limits.n_mels, limits.max_input_len, limits.max_seq_len, limits.context_logits) == (128, 14, 114, True)


def test_the_engine_needs_tensorrt_llm_only_when_used():
    pytest.importorskip("faster_whisper")  # the package imports fine without tensorrt_llm
    try:
        import tensorrt_llm  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="needs TensorRT-LLM and torch, which the gpu image ships"):
            create_engine("tensorrt_llm", "/nonexistent")
    else:
        with pytest.raises(FileNotFoundError, match="no Whisper TensorRT-LLM engine"):
            create_engine("tensorrt_llm", "/nonexistent")


# --- yes_probability ----------------------------------------------------------------------
def test_yes_probability_from_generation_logits():
    vocab = 10
    logits = np.full((1, 1, vocab), -10.0)
    logits[0, 0, [2, 3]] = [np.log(3.0), 0.0]  # "Yes" x3 as likely as " Yes"... both yes
    logits[0, 0, 5] = np.log(4.0)  # "No"
    assert llm_trt.yes_probability(logits, [2, 3], [5]) == pytest.approx(4 / 8, abs=1e-3)
    assert llm_trt.first_token_ids(
        lambda w: {"Yes": [2], " Yes": [3, 1], "yes": [2]}.get(w, []), ("Yes", " Yes", "yes", " yes")
    ) == [2, 3]


def test_yes_no_scorer_uses_the_tokenizer(tmp_path, whisper_tokenizer_json):
    (tmp_path / "tokenizer.json").write_bytes(whisper_tokenizer_json.read_bytes())
    scorer = llm_trt.YesNoScorer(tmp_path)
    assert scorer.yes_ids and scorer.no_ids and not set(scorer.yes_ids) & set(scorer.no_ids)
    assert np.isnan(scorer(None))
    logits = np.zeros((1, 1, 51865))
    logits[0, 0, scorer.yes_ids[0]] = 5.0
    assert scorer(logits) > 0.9


def test_a_system_triton_replaces_the_wheels(tmp_path, monkeypatch):
    from livetranslate.launcher import ServerOptions
    from livetranslate.launcher import binaries as server

    binary, backends = tmp_path / "tritonserver", tmp_path / "backends"
    binary.write_text("")
    backends.mkdir()
    monkeypatch.setenv(server.TRITONSERVER_ENV, str(binary))
    monkeypatch.setenv(server.BACKEND_DIR_ENV, str(backends))
    options = ServerOptions(profile="gpu")
    assert options.command(backends)[0] == str(binary)
    assert "nvidia_pytriton.libs" not in options.environment().get("LD_LIBRARY_PATH", "")
    monkeypatch.setenv(server.BACKEND_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(server.ServerError, match="LIVETRANSLATE_BACKEND_DIR"):
        server.find_tritonserver()
