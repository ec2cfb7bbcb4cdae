"""Downloaded checkpoints → TensorRT-LLM engines for the gpu profile.

    python -m engine_build whisper --checkpoint /models/downloads/large-v3.pt --tokenizer …/tokenizer.json
    python -m engine_build llama --checkpoint /models/downloads/Meta-Llama-3.1-8B-Instruct
    python -m engine_build llm-configs          # fills the tensorrtllm_backend templates (image build)
    python -m engine_build … --dry-run          # prints the exact commands, runs nothing

Defaults are the seed's settings; every one is a flag. Whisper large-v3: int8 weight-only
checkpoint, encoder (max batch 8, bert_attention_plugin float16, 3000 input frames = 30 s),
decoder (max beam 4, max batch 8, max_seq_len 114, max_input_len 14, max_encoder_input_len
3000, gemm/gpt attention plugins float16). LLaMA 3.1 8B Instruct: float16 checkpoint with
int4 weight-only, max_input_len 1000, max_seq_len 2000, paged context FMHA. Two additions of
ours, both switchable: the Whisper decoder keeps context logits (the no-speech probability)
and the LLaMA engine keeps generation logits (completeness's P(yes)).

The build refuses to run under a TensorRT-LLM other than the server's (versions.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from engine_build import llm_configs, versions

ENGINES_DIR = Path(os.environ.get("LIVETRANSLATE_ENGINES_DIR", "/models/engines"))
WORK_DIR = Path(os.environ.get("LIVETRANSLATE_BUILD_DIR", "/models/build"))
REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"


@dataclass(frozen=True)
class WhisperBuild:
    checkpoint: str = "/models/downloads/large-v3.pt"  # OpenAI's large-v3.pt
    tokenizer: str = "/models/downloads/whisper-large-v3/tokenizer.json"  # openai/whisper-large-v3's
    model_name: str = "large-v3"
    output_dir: str = str(ENGINES_DIR / "whisper-large-v3")
    checkpoint_dir: str = str(WORK_DIR / "whisper-large-v3-checkpoint")
    dtype: str = "float16"
    weight_only_precision: str = "int8"  # "" for no weight-only quantisation
    max_batch_size: int = 8
    encoder_max_input_len: int = 3000  # frames: 30 s
    bert_attention_plugin: str = "float16"
    max_beam_width: int = 4
    decoder_max_seq_len: int = 114
    decoder_max_input_len: int = 14
    max_encoder_input_len: int = 3000
    gemm_plugin: str = "float16"
    gpt_attention_plugin: str = "float16"
    gather_context_logits: bool = True  # ours: no-speech probability at <|startoftranscript|>

    def commands(self, examples: Path) -> list[list[str]]:
        # convert_checkpoint.py reads <model_dir>/<model_name>.pt: another file name would
        # silently convert whatever checkpoint sits there under that name
        if Path(self.checkpoint).name != f"{self.model_name}.pt":
            raise SystemExit(
                f"the Whisper checkpoint must be named {self.model_name}.pt (TensorRT-LLM's "
                f"convert_checkpoint.py reads <folder>/<model name>.pt); for "
                f"{Path(self.checkpoint).name} pass --model-name {Path(self.checkpoint).stem}"
            )
        convert = [
            sys.executable,
            str(examples / versions.WHISPER_EXAMPLE / "convert_checkpoint.py"),
            "--model_dir",
            str(Path(self.checkpoint).parent),
            "--model_name",
            self.model_name,
            "--dtype",
            self.dtype,
            "--output_dir",
            self.checkpoint_dir,
        ]
        if self.weight_only_precision:
            convert += ["--use_weight_only", "--weight_only_precision", self.weight_only_precision]
        encoder = [
            "trtllm-build",
            "--checkpoint_dir",
            f"{self.checkpoint_dir}/encoder",
            "--output_dir",
            f"{self.output_dir}/encoder",
            "--moe_plugin",
            "disable",
            "--max_batch_size",
            str(self.max_batch_size),
            "--gemm_plugin",
            "disable",
            "--bert_attention_plugin",
            self.bert_attention_plugin,
            "--max_input_len",
            str(self.encoder_max_input_len),
            "--max_seq_len",
            str(self.encoder_max_input_len),
        ]
        decoder = [
            "trtllm-build",
            "--checkpoint_dir",
            f"{self.checkpoint_dir}/decoder",
            "--output_dir",
            f"{self.output_dir}/decoder",
            "--moe_plugin",
            "disable",
            "--max_beam_width",
            str(self.max_beam_width),
            "--max_batch_size",
            str(self.max_batch_size),
            "--max_seq_len",
            str(self.decoder_max_seq_len),
            "--max_input_len",
            str(self.decoder_max_input_len),
            "--max_encoder_input_len",
            str(self.max_encoder_input_len),
            "--gemm_plugin",
            self.gemm_plugin,
            "--bert_attention_plugin",
            self.bert_attention_plugin,
            "--gpt_attention_plugin",
            self.gpt_attention_plugin,
        ]
        if self.gather_context_logits:
            decoder.append("--gather_context_logits")
        copy_tokenizer = ["cp", self.tokenizer, f"{self.output_dir}/tokenizer.json"]
        return [convert, encoder, decoder, copy_tokenizer]


@dataclass(frozen=True)
class LlamaBuild:
    checkpoint: str = "/models/downloads/Meta-Llama-3.1-8B-Instruct"  # the Hugging Face folder
    output_dir: str = str(ENGINES_DIR / "llama-3.1-8b-instruct")
    checkpoint_dir: str = str(WORK_DIR / "llama-3.1-8b-instruct-checkpoint")
    dtype: str = "float16"
    weight_only_precision: str = "int4"  # "" for no weight-only quantisation
    max_batch_size: int = 8
    max_input_len: int = 1000
    max_seq_len: int = 2000
    gemm_plugin: str = "float16"
    use_paged_context_fmha: bool = True
    gather_generation_logits: bool = True  # ours: completeness reads P(yes) from the logits

    TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

    def commands(self, examples: Path) -> list[list[str]]:
        convert = [
            sys.executable,
            str(examples / versions.LLAMA_EXAMPLE / "convert_checkpoint.py"),
            "--model_dir",
            self.checkpoint,
            "--output_dir",
            self.checkpoint_dir,
            "--dtype",
            self.dtype,
        ]
        if self.weight_only_precision:
            convert += ["--use_weight_only", "--weight_only_precision", self.weight_only_precision]
        build = [
            "trtllm-build",
            "--checkpoint_dir",
            self.checkpoint_dir,
            "--output_dir",
            self.output_dir,
            "--gemm_plugin",
            self.gemm_plugin,
            "--max_batch_size",
            str(self.max_batch_size),
            "--max_input_len",
            str(self.max_input_len),
            "--max_seq_len",
            str(self.max_seq_len),
            "--use_paged_context_fmha",
            "enable" if self.use_paged_context_fmha else "disable",
        ]
        if self.gather_generation_logits:
            build.append("--gather_generation_logits")
        # the tokenizer travels with the engine: preprocessing, postprocessing and
        # yes_probability read it from the engine folder
        copy = ["cp", *(f"{self.checkpoint}/{name}" for name in self.TOKENIZER_FILES), self.output_dir]
        return [convert, build, copy]


def llm_config_commands(serving: llm_configs.LlmServing, backend: Path, repository: Path) -> list[list[str]]:
    return llm_configs.fill_commands(serving, backend, repository)


# --- command line ---------------------------------------------------------------------------
def _add_fields(parser: argparse.ArgumentParser, spec) -> None:
    for f in fields(spec):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=f"default: {f.default}")


def _spec_from(args: argparse.Namespace, spec):
    return spec(**{f.name: getattr(args, f.name) for f in fields(spec)})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine_build", description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument(
        "--tensorrt-llm-sources",
        type=Path,
        default=versions.TENSORRT_LLM_SOURCES,
        help="TensorRT-LLM checkout at the pinned tag (its examples convert the checkpoints)",
    )
    p.add_argument(
        "--backend-sources",
        type=Path,
        default=versions.BACKEND_SOURCES,
        help="tensorrtllm_backend checkout at the pinned tag (templates, fill_template.py)",
    )
    p.add_argument(
        "--server-tensorrt-llm", default=versions.TENSORRT_LLM_VERSION, help="the TensorRT-LLM version the server runs"
    )
    sub = p.add_subparsers(dest="target", required=True)
    _add_fields(sub.add_parser("whisper", help="Whisper large-v3 encoder and decoder engines"), WhisperBuild)
    _add_fields(sub.add_parser("llama", help="LLaMA 3.1 8B Instruct engine"), LlamaBuild)
    configs = sub.add_parser("llm-configs", help="fill the tensorrtllm_backend templates for the llm ensemble")
    configs.add_argument("--repository", type=Path, default=REPOSITORY)
    _add_fields(configs, llm_configs.LlmServing)
    return p


def plan(args: argparse.Namespace) -> list[list[str]]:
    if args.target == "whisper":
        return _spec_from(args, WhisperBuild).commands(args.tensorrt_llm_sources)
    if args.target == "llama":
        return _spec_from(args, LlamaBuild).commands(args.tensorrt_llm_sources)
    return llm_config_commands(_spec_from(args, llm_configs.LlmServing), args.backend_sources, args.repository)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = plan(args)
    if args.dry_run:
        for command in commands:
            print(shlex.join(command))
        return 0
    if args.target == "llm-configs":
        llm_configs.copy_members(args.backend_sources, args.repository)
    else:
        versions.check_build_version(versions.installed_tensorrt_llm(), args.server_tensorrt_llm)
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    for command in commands:
        print("+ " + shlex.join(command), flush=True)
        if shutil.which(command[0]) is None and not Path(command[0]).is_file():
            raise SystemExit(f"{command[0]} not found: run the build inside the gpu image")
        subprocess.run(command, check=True)
    if args.target == "llm-configs":
        llm_configs.check_filled(args.repository)
    else:
        for part in ("encoder", "decoder") if args.target == "whisper" else ("",):
            versions.check_engine_version(Path(args.output_dir) / part, args.server_tensorrt_llm)
    return 0
