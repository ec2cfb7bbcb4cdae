"""Whisper large-v3 on TensorRT-LLM: the gpu profile's engine.

Encoder and decoder engines (engine_build/whisper) run in-process through TensorRT-LLM's
ModelRunnerCpp with `is_enc_dec`, as in TensorRT-LLM's Whisper example. Our code makes the
inputs (numpy log-mel features, the multilingual prompt with language, task, prompt text and
committed prefix: livetranslate.stages.whisper.features) and reads the outputs; a batch of requests from
several streams (Triton's dynamic batcher) is one generate call, grouped by beam size.

torch and tensorrt_llm are imported when the engine is created, never at import time: the
package imports and the helpers below are tested on machines without a GPU.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livetranslate.stages.whisper import (
    AsrOptions,
    AsrRequest,
    Transcription,
    WhisperEngine,
    decode_again,
)
from livetranslate.stages.whisper.features import (
    ENCODER_DOWNSAMPLING,
    N_FRAMES,
    WhisperTokenizer,
    encoder_features,
)

MAX_NEW_TOKENS = 96  # one utterance of up to 30 s; also bounded by the decoder's max_seq_len


@dataclass(frozen=True)
class EngineLimits:
    """What the decoder engine was built for (decoder/config.json)."""

    max_batch_size: int = 8
    max_beam_width: int = 4
    max_input_len: int = 14
    max_seq_len: int = 114
    n_mels: int = 128
    context_logits: bool = False  # built with --gather_context_logits: no-speech probability

    @classmethod
    def from_engine_dir(cls, engine_dir: Path) -> EngineLimits:
        decoder = json.loads((engine_dir / "decoder" / "config.json").read_text())
        encoder = json.loads((engine_dir / "encoder" / "config.json").read_text())
        build = decoder.get("build_config", {})
        return cls(
            max_batch_size=int(build.get("max_batch_size", cls.max_batch_size)),
            max_beam_width=int(build.get("max_beam_width", cls.max_beam_width)),
            max_input_len=int(build.get("max_input_len", cls.max_input_len)),
            max_seq_len=int(build.get("max_seq_len", cls.max_seq_len)),
            n_mels=int(encoder.get("pretrained_config", {}).get("n_mels", cls.n_mels)),
            context_logits=bool(build.get("gather_context_logits", False)),
        )


def engine_files(engine_dir: Path) -> list[Path]:
    """What engine_build/whisper leaves in an engine folder."""
    return [
        engine_dir / "encoder" / "config.json",
        engine_dir / "decoder" / "config.json",
        engine_dir / "tokenizer.json",
    ]


def generated_tokens(output_ids: list[int], sequence_length: int, prompt: list[int], eot: int) -> list[int]:
    """The tokens the decoder produced: ModelRunnerCpp returns the prompt in front of them
    for encoder-decoder models, padded with end ids after the sequence length."""
    tokens = [int(t) for t in output_ids[:sequence_length]]
    if tokens[: len(prompt)] == list(prompt):
        tokens = tokens[len(prompt) :]
    if eot in tokens:
        tokens = tokens[: tokens.index(eot)]
    return tokens


def no_speech_probability(logits: np.ndarray | None, no_speech_id: int) -> float:
    """Softmax of the <|nospeech|> logit at the <|startoftranscript|> position (0 when the
    engine was built without context logits: the filter then relies on the other signals)."""
    if logits is None or no_speech_id < 0:
        return 0.0
    row = np.asarray(logits, dtype=np.float64).reshape(-1)
    row = row - row.max()
    return float(np.exp(row[no_speech_id]) / np.exp(row).sum())


def average_logprob(cum_logprob: float | None, n_tokens: int) -> float:
    """faster-whisper's definition: the sum over the tokens and the end token."""
    if not n_tokens:
        return -10.0
    if cum_logprob is None or not math.isfinite(cum_logprob):
        return 0.0
    return float(cum_logprob) / (n_tokens + 1)


class TensorRTLLMWhisperEngine(WhisperEngine):
    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cuda",
        compute_type: str = "",  # fixed when the engine was built
        cpu_threads: int = 0,  # unused: the GPU does the work
        options: AsrOptions = AsrOptions(),
        kv_cache_free_gpu_memory_fraction: float = 0.3,  # the LLM shares the GPU
        cross_kv_cache_fraction: float = 0.5,
    ):
        try:
            import tensorrt_llm
            import torch
            from tensorrt_llm.runtime import ModelRunnerCpp
        except ImportError as exc:
            raise RuntimeError(
                f"the tensorrt_llm Whisper engine needs TensorRT-LLM and torch, which the gpu image "
                f"ships (Dockerfile target gpu); this environment lacks them ({exc}). "
                f"Use the cpu profile here (engine ctranslate2)"
            ) from exc
        from livetranslate.weights.trtllm_version import check_engine_version

        engine_dir = Path(model_path)
        missing = [str(p) for p in engine_files(engine_dir) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"no Whisper TensorRT-LLM engine in {engine_dir} (missing {', '.join(missing)}): "
                f"build it with `python -m engine_build whisper`"
            )
        for part in ("encoder", "decoder"):
            check_engine_version(engine_dir / part, tensorrt_llm.__version__)
        self.torch = torch
        self.device = torch.device(device if device.startswith("cuda") else "cuda")
        self.options = options
        self.limits = EngineLimits.from_engine_dir(engine_dir)
        self.tokenizer = WhisperTokenizer(engine_dir / "tokenizer.json")
        self.runner = ModelRunnerCpp.from_dir(
            engine_dir=str(engine_dir),
            is_enc_dec=True,
            max_batch_size=self.limits.max_batch_size,
            max_input_len=N_FRAMES,
            max_output_len=self.limits.max_seq_len,
            max_beam_width=self.limits.max_beam_width,
            kv_cache_free_gpu_memory_fraction=kv_cache_free_gpu_memory_fraction,
            cross_kv_cache_fraction=cross_kv_cache_fraction,
        )

    # --- WhisperEngine ----------------------------------------------------------------------
    def transcribe(self, requests: list[AsrRequest]) -> list[Transcription]:
        if not requests:
            return []
        features = [encoder_features(r.audio, self.limits.n_mels) for r in requests]
        languages = self._languages(requests, features)
        results = self._decode(requests, features, languages)
        # Whisper, unsure of the audio, tends to repeat its prompt: decode those again without it.
        again = {
            i: retry
            for i, (r, out) in enumerate(zip(requests, results))
            if (retry := decode_again(r, out.text)) is not None
        }
        if again:
            retried = self._decode(list(again.values()), [features[i] for i in again], [languages[i] for i in again])
            for i, result in zip(again, retried):
                results[i] = result
        return results

    # --- internals ---------------------------------------------------------------------------
    def _languages(self, requests: list[AsrRequest], features: list[np.ndarray]) -> list[str]:
        """The requested language, or the one Whisper names after <|startoftranscript|>."""
        unknown = [i for i, r in enumerate(requests) if not r.language]
        languages = [r.language for r in requests]
        if unknown:
            sot = self.tokenizer.specials.sot
            outputs = self._generate([[sot]] * len(unknown), [features[i] for i in unknown], beam=1, max_new=1)
            for i, ids, length in zip(unknown, outputs["output_ids"], outputs["sequence_lengths"]):
                tokens = list(ids[0][: length[0]])
                guess = self.tokenizer.specials.language_of(tokens[-1]) if tokens else None
                languages[i] = guess or "en"
        return languages

    def _decode(self, requests, features, languages) -> list[Transcription]:
        results: dict[int, Transcription] = {}  # by request: each is in one group
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            beam = min(r.beam_size or self.options.beam_size, self.limits.max_beam_width)
            groups.setdefault(max(1, beam), []).append(i)
        for beam, indices in groups.items():
            prompts = [
                self.tokenizer.prompt(
                    languages[i], requests[i].previous_text(), requests[i].prefix, self.limits.max_input_len
                )
                for i in indices
            ]
            max_new = min(MAX_NEW_TOKENS, self.limits.max_seq_len - max(len(p.tokens) for p in prompts))
            out = self._generate([p.tokens for p in prompts], [features[i] for i in indices], beam, max_new)
            for k, (i, prompt) in enumerate(zip(indices, prompts)):
                tokens = generated_tokens(
                    list(out["output_ids"][k][0]),
                    int(out["sequence_lengths"][k][0]),
                    prompt.tokens,
                    self.tokenizer.specials.eot,
                )
                text = self.tokenizer.decode(tokens).strip()
                cum = out.get("cum_log_probs")
                context = out.get("context_logits")
                results[i] = Transcription(
                    text=text,
                    language=languages[i],
                    no_speech_prob=no_speech_probability(
                        None if context is None else np.asarray(context[k])[prompt.sot_index],
                        self.tokenizer.specials.no_speech,
                    ),
                    avg_logprob=average_logprob(
                        None if cum is None else float(np.asarray(cum[k]).reshape(-1)[0]), len(tokens)
                    ),
                    compression_ratio=_compression_ratio(text),
                )
        return [results[i] for i in range(len(requests))]

    def _generate(self, prompts: list[list[int]], features: list[np.ndarray], beam: int, max_new: int) -> dict:
        torch = self.torch
        with torch.no_grad():
            outputs = self.runner.generate(
                batch_input_ids=[torch.tensor(p, dtype=torch.int32) for p in prompts],
                encoder_input_features=[torch.from_numpy(f).to(self.device, torch.float16) for f in features],
                encoder_output_lengths=torch.tensor(
                    [N_FRAMES // ENCODER_DOWNSAMPLING] * len(prompts), dtype=torch.int32, device=self.device
                ),
                max_new_tokens=max(1, max_new),
                end_id=self.tokenizer.specials.eot,
                pad_id=self.tokenizer.specials.eot,
                num_beams=beam,
                output_sequence_lengths=True,
                output_cum_log_probs=True,
                return_dict=True,
            )
            torch.cuda.synchronize()
        return {
            name: _to_numpy(value)
            for name, value in outputs.items()
            if name in ("output_ids", "sequence_lengths", "cum_log_probs", "context_logits")
        }


def _to_numpy(value):
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    if hasattr(value, "detach"):  # a torch tensor; half-precision logits become float32
        value = value.detach().cpu()
        return (value.float() if value.is_floating_point() else value).numpy()
    return np.asarray(value)


def _compression_ratio(text: str) -> float:
    from livetranslate.stages.whisper.ctranslate2 import _compression_ratio as ratio

    return ratio(text)
