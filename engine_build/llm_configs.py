"""The tensorrtllm_backend's model configs for the gpu `llm` ensemble.

preprocessing, tensorrt_llm and postprocessing (model.py and config template) come from
triton-inference-server/tensorrtllm_backend at the pinned tag (versions.py), fetched when the
image is built; nothing of theirs is copied into this repository. This module fills their
templates with the backend's own tools/fill_template.py into
model_repository/<member>/configs/gpu.pbtxt (the gpu profile's config name), copies their
model.py, and checks the result against `interface.json`: the member inputs and outputs our
ensemble (model_repository/llm/configs/gpu.pbtxt) was written against, so a tag whose
templates changed fails the image build instead of the first request.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from engine_build import versions

MEMBERS = ("preprocessing", "tensorrt_llm", "postprocessing")
TEMPLATES = "all_models/inflight_batcher_llm"
INTERFACE = Path(__file__).with_name("interface.json")


@dataclass(frozen=True)
class LlmServing:
    """What the fill step writes into the templates; every field is a --flag."""

    engine_dir: str = "/models/engines/llama-3.1-8b-instruct"  # also holds the HF tokenizer files
    tokenizer_dir: str = ""  # "" = engine_dir
    triton_max_batch_size: int = 8
    max_queue_delay_microseconds: int = 1000
    kv_cache_free_gpu_mem_fraction: float = 0.5  # Whisper shares the GPU
    max_beam_width: int = 1
    batching_strategy: str = "inflight_fused_batching"
    batch_scheduler_policy: str = "guaranteed_no_evict"
    enable_kv_cache_reuse: bool = False
    instance_count: int = 1  # preprocessing and postprocessing instances

    def substitutions(self, member: str) -> dict[str, str]:
        tokenizer = self.tokenizer_dir or self.engine_dir
        common = {"triton_max_batch_size": str(self.triton_max_batch_size)}
        if member == "preprocessing":
            # our prompts (livetranslate.stages.llm.prompts) carry <|begin_of_text|> themselves
            return {
                **common,
                "tokenizer_dir": tokenizer,
                "add_special_tokens": "False",
                "preprocessing_instance_count": str(self.instance_count),
                "engine_dir": self.engine_dir,
            }
        if member == "postprocessing":
            return {
                **common,
                "tokenizer_dir": tokenizer,
                "skip_special_tokens": "True",
                "postprocessing_instance_count": str(self.instance_count),
            }
        return {
            **common,
            "triton_backend": "tensorrtllm",
            "decoupled_mode": "True",  # `llm` streams, like the cpu profile's
            "engine_dir": self.engine_dir,
            "max_queue_delay_microseconds": str(self.max_queue_delay_microseconds),
            "max_queue_size": "0",
            "batching_strategy": self.batching_strategy,
            "batch_scheduler_policy": self.batch_scheduler_policy,
            "kv_cache_free_gpu_mem_fraction": str(self.kv_cache_free_gpu_mem_fraction),
            "max_beam_width": str(self.max_beam_width),
            "exclude_input_in_output": "True",
            "enable_kv_cache_reuse": str(self.enable_kv_cache_reuse).lower(),
            "encoder_input_features_data_type": "TYPE_FP16",
            "logits_datatype": "TYPE_FP32",  # yes_probability reads generation_logits as FP32
        }


def fill_commands(serving: LlmServing, backend_dir: Path, repository: Path) -> list[list[str]]:
    """The backend's fill_template.py, once per member, on copies of its templates."""
    tool = backend_dir / "tools" / "fill_template.py"
    return [
        [
            sys.executable,
            str(tool),
            "-i",
            str(config_path(repository, member)),
            ",".join(f"{k}:{_escape(v)}" for k, v in serving.substitutions(member).items()),
        ]
        for member in MEMBERS
    ]


def config_path(repository: Path, member: str) -> Path:
    return repository / member / "configs" / "gpu.pbtxt"


def copy_members(backend_dir: Path, repository: Path) -> None:
    """model.py and the unfilled template of each member into the model repository."""
    for member in MEMBERS:
        source = backend_dir / TEMPLATES / member
        target = repository / member
        (target / "1").mkdir(parents=True, exist_ok=True)
        (target / "configs").mkdir(parents=True, exist_ok=True)
        for item in (source / "1").iterdir():
            if item.is_file():
                shutil.copy2(item, target / "1" / item.name)
        shutil.copy2(source / "config.pbtxt", config_path(repository, member))


def parse(text: str):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def interface_of(config) -> dict:
    """Name → (type, dims, optional) of each input and output: what an ensemble can map."""
    from tritonclient.grpc import model_config_pb2

    def tensors(items):
        return {
            t.name: {
                "data_type": model_config_pb2.DataType.Name(t.data_type),
                "dims": list(t.dims),
                **({"optional": True} if getattr(t, "optional", False) else {}),
            }
            for t in items
        }

    return {"inputs": tensors(config.input), "outputs": tensors(config.output)}


def check_filled(repository: Path, interface: dict | None = None) -> None:
    """Every member config parses, has no placeholder left where Triton needs a value, and
    offers the inputs and outputs `interface.json` promises (the ensemble relies on them)."""
    interface = interface or json.loads(INTERFACE.read_text())
    problems = []
    for member in MEMBERS:
        text = config_path(repository, member).read_text()
        unfilled = sorted(set(re.findall(r"\$\{(\w+)\}", _strip_parameters(text))))
        if unfilled:
            problems.append(f"{member}: unfilled template variables {unfilled}")
            continue
        config = parse(_blank_unset_parameters(text))
        actual = interface_of(config)
        for kind in ("inputs", "outputs"):
            for name, spec in interface[member][kind].items():
                if actual[kind].get(name) != spec:
                    problems.append(f"{member}: {kind[:-1]} {name} is {actual[kind].get(name)}, expected {spec}")
    if problems:
        raise ValueError("tensorrtllm_backend configs do not fit the llm ensemble:\n  " + "\n  ".join(problems))


def extract_interface(backend_dir: Path) -> dict:
    """interface.json from the templates of a tensorrtllm_backend checkout (how it was made)."""
    result = {}
    for member in MEMBERS:
        text = (backend_dir / TEMPLATES / member / "config.pbtxt").read_text()
        text = text.replace("${triton_max_batch_size}", "8").replace("${decoupled_mode}", "true")
        text = text.replace("${max_queue_delay_microseconds}", "0").replace("${max_queue_size}", "0")
        text = re.sub(r"\$\{(encoder_input_features_data_type)\}", "TYPE_FP16", text)
        text = re.sub(r"\$\{(logits_datatype)\}", "TYPE_FP32", text)
        text = re.sub(r"\$\{\w*instance_count\}", "1", text)
        result[member] = interface_of(parse(_blank_unset_parameters(text)))
    return {"tensorrtllm_backend": versions.TENSORRTLLM_BACKEND_TAG, **result}


def _escape(value: str) -> str:
    """fill_template.py splits on ',' and ':' and takes '\\' as the escape."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _strip_parameters(text: str) -> str:
    # Unset string parameters stay "${...}" by the backend's design (it treats them as unset).
    return re.sub(r'string_value:\s*"[^"]*"', 'string_value: ""', text)


def _blank_unset_parameters(text: str) -> str:
    return re.sub(r'"\$\{\w+\}"', '""', text)
