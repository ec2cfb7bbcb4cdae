"""Whisper's input side in numpy: log-mel features and the decoder prompt.

The TensorRT-LLM engines take features and token ids, not audio and text: this module makes
them without torch or TensorRT-LLM, so it is tested here against faster-whisper's own
FeatureExtractor and Tokenizer (the same numbers the cpu profile feeds CTranslate2).
Large-v3 uses 128 mel bins, the older models 80.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop: 100 frames per second
CHUNK_SECONDS = 30
N_FRAMES = CHUNK_SECONDS * SAMPLE_RATE // HOP_LENGTH  # 3000: what the encoder sees
ENCODER_DOWNSAMPLING = 2  # the encoder's strided conv halves the frames: 1500 positions


# --- log-mel features ---------------------------------------------------------------------
def _hz_to_mel(hz: npt.ArrayLike) -> np.ndarray:
    """Slaney's mel scale (librosa's default, what Whisper was trained with): linear below
    1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Triangular Slaney-normalised filters, shape (n_mels, n_fft // 2 + 1)."""
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2), n_mels + 2))
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return (triangles * (2.0 / (right - left))).astype(np.float32)  # equal area per filter


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 128, padding: int = HOP_LENGTH) -> np.ndarray:
    """(n_mels, frames) log-mel features of 16 kHz mono audio, scaled as Whisper expects:
    log10 power, floored 8 decades under the maximum, then (x + 4) / 4."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if padding:
        audio = np.pad(audio, (0, padding))
    half = N_FFT // 2
    padded = np.pad(audio, (half, half), mode="reflect" if audio.size > half else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=-1).astype(np.complex64)) ** 2
    mel = mel_filters(n_mels) @ power[:-1].T  # the last frame is dropped, as in Whisper
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def pad_or_trim(features: np.ndarray, frames: int = N_FRAMES) -> np.ndarray:
    """Zero-pads or cuts the time axis (the last) to `frames`: the encoder takes 30 s."""
    if features.shape[-1] >= frames:
        return features[..., :frames]
    return np.pad(features, [(0, 0)] * (features.ndim - 1) + [(0, frames - features.shape[-1])])


def encoder_features(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """The encoder's input for one request: the last 30 s of audio, (N_FRAMES, n_mels)."""
    window = CHUNK_SECONDS * SAMPLE_RATE
    return pad_or_trim(log_mel_spectrogram(np.asarray(audio)[-window:], n_mels)).T.copy()


# --- the decoder prompt ---------------------------------------------------------------------
@dataclass(frozen=True)
class SpecialTokens:
    """Whisper's special token ids, read from the model's tokenizer.json. Large-v3 has one
    more language (yue) than the older models, so every id after the languages moves by one:
    never hard-code them."""

    eot: int
    sot: int
    sot_prev: int
    no_speech: int
    no_timestamps: int
    transcribe: int
    translate: int
    languages: dict[str, int]

    @classmethod
    def from_vocabulary(cls, token_ids: dict[str, int]) -> SpecialTokens:
        languages = {}
        for token, token_id in token_ids.items():
            code = token[2:-2]
            if token.startswith("<|") and token.endswith("|>") and 2 <= len(code) <= 3 and code.islower():
                languages[code] = token_id
        return cls(
            eot=token_ids["<|endoftext|>"],
            sot=token_ids["<|startoftranscript|>"],
            sot_prev=token_ids["<|startofprev|>"],
            no_speech=token_ids.get("<|nospeech|>", token_ids.get("<|nocaptions|>", -1)),
            no_timestamps=token_ids["<|notimestamps|>"],
            transcribe=token_ids["<|transcribe|>"],
            translate=token_ids["<|translate|>"],
            languages=languages,
        )

    @classmethod
    def from_tokenizer_json(cls, path: str | Path) -> SpecialTokens:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_vocabulary({t["content"]: t["id"] for t in data.get("added_tokens", [])})

    def task_sequence(self, language: str, task: str = "transcribe") -> list[int]:
        """<|startoftranscript|><|de|><|transcribe|><|notimestamps|>"""
        if language not in self.languages:
            raise ValueError(f"Whisper has no language {language!r}")
        return [
            self.sot,
            self.languages[language],
            self.transcribe if task == "transcribe" else self.translate,
            self.no_timestamps,
        ]

    def language_of(self, token_id: int) -> str | None:
        for code, tid in self.languages.items():
            if tid == token_id:
                return code
        return None


@dataclass(frozen=True)
class DecoderPrompt:
    tokens: list[int]
    sot_index: int  # where <|startoftranscript|> is: the no-speech probability is read there


def build_prompt(
    specials: SpecialTokens,
    language: str,
    previous: Sequence[int] = (),
    prefix: Sequence[int] = (),
    max_tokens: int = 448 // 2,
) -> DecoderPrompt:
    """faster-whisper's prompt layout: [<|startofprev|> previous…] task sequence [prefix…].

    `max_tokens` is the decoder engine's max_input_len (14 with the seed's build flags): the
    task sequence always goes in, then the end of the prefix (the decoder continues after
    it, so its end is what matters), then the end of the previous text if room is left.
    With the default limit nothing is cut, as in faster-whisper (each part < 224 tokens).
    """
    task = specials.task_sequence(language)
    room = max(0, max_tokens - len(task))
    prefix = list(prefix)[-min(room, 448 // 2 - 1) :] if room else []
    room -= len(prefix)
    previous = list(previous)[-min(room - 1, 448 // 2 - 1) :] if room > 1 and previous else []
    head = [specials.sot_prev, *previous] if previous else []
    return DecoderPrompt(head + task + prefix, sot_index=len(head))


class WhisperTokenizer:
    """Text ↔ ids with the model's own tokenizer.json (Hugging Face `tokenizers`, which
    faster-whisper installs), plus the special ids and the prompt layout."""

    def __init__(self, tokenizer_json: str | Path):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.specials = SpecialTokens.from_tokenizer_json(tokenizer_json)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t < self.specials.eot])

    def prompt(
        self, language: str, previous_text: str = "", prefix: str = "", max_tokens: int = 448 // 2
    ) -> DecoderPrompt:
        previous = self.encode(" " + previous_text.strip()) if previous_text.strip() else []
        prefix_ids = self.encode(" " + prefix.strip()) if prefix.strip() else []
        return build_prompt(self.specials, language, previous, prefix_ids, max_tokens)
