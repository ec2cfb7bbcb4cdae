"""The `whisper` and `whisper_partial` models' logic (model_repository/whisper): Whisper
engines behind one interface, audio window in, Transcription out."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livetranslate.protocol import Word


@dataclass(frozen=True)
class AsrRequest:
    audio: np.ndarray  # float32 mono, 16 kHz
    language: str = ""  # "" detects
    prompt: str = ""  # previous text, for context
    # Text already committed for the start of `audio`: Whisper is forced through it and
    # returns only what follows (context decoding: the audio before the new utterance).
    prefix: str = ""
    beam_size: int = 0  # 0: the engine's default; partials ask for 1 (greedy, cheaper)
    # Terms of the session's glossary ("Zorvexa, Tranovix Hub"): heard before the prompt,
    # kept when a decode that copied its prompt is done again without it
    hotwords: str = ""
    word_times: bool = False  # each word's times too (a final's: the alignment costs a decoder pass)

    def previous_text(self) -> str:
        """What goes into Whisper's previous-text slot: the terms, then the prompt."""
        return " ".join(part for part in (self.hotwords.strip(), self.prompt.strip()) if part)


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float = 1.0
    # with AsrRequest.word_times: the words of `text` and when they were said, in seconds
    # from the start of the request's audio (empty when not asked, or the engine has none)
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class AsrOptions:
    beam_size: int = 5
    # Temperature 0 only: the fallback to higher temperatures decodes again, which makes the
    # latency of a live transcript unpredictable for little accuracy.
    temperature: float = 0.0
    # CTranslate2 only: the encoder hears the request's audio padded with silence to at least
    # this long (and ENCODER_TAIL_S past its end), not always to Whisper's 30 s. Its cost grows
    # with its input, so a shorter window is faster. With a `prefix` (context decoding) 15 s
    # keeps the accuracy (a point better or worse than 20 s on three recordings, a fifth
    # faster); a request with only its own audio loses some, so it keeps 30 s. Much shorter
    # windows (the audio and 2 s) lose a lot: Whisper was trained on 30 s windows (figures:
    # bench/results/policies.md). The TensorRT-LLM engine is built for 30 s and ignores both.
    min_window_s: float = 15.0
    min_window_alone_s: float = 30.0  # the same for a request without a prefix


class WhisperEngine(abc.ABC):
    """Knows nothing of Triton: the `whisper` model is a thin adapter over one of these."""

    @abc.abstractmethod
    def transcribe(self, requests: list[AsrRequest]) -> list[Transcription]:
        """One result per request, in order."""


def create_engine(name: str, model_path: str | Path, cpu_priority: str = "normal", **params) -> WhisperEngine:
    """`cpu_priority="idle"` puts this whole process, the engine's threads included, at idle
    CPU priority (livetranslate.stages.priority): for the process that decodes partials."""
    from livetranslate.stages import priority

    priority.apply(cpu_priority)  # before the engine starts threads: they inherit it
    if name == "ctranslate2":
        from livetranslate.stages.whisper.ctranslate2 import CTranslate2Engine

        engine: WhisperEngine = CTranslate2Engine(model_path, **params)
    elif name == "tensorrt_llm":
        # Imports torch and TensorRT-LLM only when created: a clear error where they are missing.
        from livetranslate.stages.whisper.tensorrt_llm import TensorRTLLMWhisperEngine

        engine = TensorRTLLMWhisperEngine(model_path, **params)
    else:
        raise ValueError(f"unknown Whisper engine {name!r}: use ctranslate2 or tensorrt_llm")
    if cpu_priority != "normal":
        # some compute threads start only at the first decode: start them, then cover them all
        engine.transcribe([AsrRequest(np.zeros(16000, np.float32), "en", beam_size=1)])
        priority.apply(cpu_priority)
    return engine


@dataclass(frozen=True)
class SpeechFilter:
    """Drops what Whisper says on silence and noise.

    Whisper hallucinates fluent text on non-speech: a high no-speech probability together
    with low confidence, repetition loops (high compression ratio), or one of the phrases
    learnt from subtitled videos.
    """

    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    max_compression_ratio: float = 2.4

    def keep(self, result: Transcription) -> bool:
        text = result.text.strip()
        if not re.search(r"\w", text):
            return False
        if result.no_speech_prob > self.no_speech_threshold and result.avg_logprob < self.logprob_threshold:
            return False
        if result.compression_ratio > self.max_compression_ratio:
            return False
        return not is_known_hallucination(text)


# Normalised phrases Whisper produces on silence (from subtitle credits in its training data).
_HALLUCINATIONS = (
    "untertitel im auftrag des zdf",
    "untertitel der amara org community",
    "untertitelung des zdf",
    "untertitel von stephanie geiges",
    "copyright wdr",
    "swr 2020",
    "vielen dank fürs zuschauen",
    "vielen dank für's zuschauen",
    "danke fürs zuschauen",
    "thank you for watching",
    "thanks for watching",
    "subtitles by the amara org community",
    "please subscribe",
    "sous titrage st 501",
    "продолжение следует",
)


def copies_prompt(text: str, prompt: str) -> bool:
    """Whisper, unsure of the audio (an unfamiliar voice), tends to repeat its prompt (the
    previous transcripts), often in a loop."""
    from rapidfuzz import fuzz

    if not prompt or len(text) < 10:
        return False
    return _looping(text) or fuzz.partial_ratio(_normalise(text), _normalise(prompt)) > 80


def _looping(text: str) -> bool:
    """A repetition loop: text that compresses far better than speech does."""
    import zlib

    data = text.encode("utf-8")
    return len(text) >= 10 and len(data) / max(1, len(zlib.compress(data))) > 1.8


def lists_hotwords(text: str, hotwords: str) -> bool:
    """Whisper, unsure of the audio, may read back the glossary terms it was given: three or
    more of them making up most of the text. (A stricter rule, two terms in the list's
    order, also caught speech that had them and lost more terms than it saved:
    bench/results/glossary.md.)"""
    said = f" {_normalise(text)} "
    found = [t for t in map(_normalise, hotwords.split(",")) if t.strip() and f" {t} " in said]
    return len(found) >= 3 and sum(len(t.split()) for t in found) >= 0.6 * len(said.split())


def decode_again(request: AsrRequest, text: str) -> AsrRequest | None:
    """The request to decode again when Whisper's answer read back its terms or looped (then
    without terms and prompt) or copied its prompt (then without the prompt, terms kept);
    None when it is fine."""
    from dataclasses import replace

    if request.hotwords and (lists_hotwords(text, request.hotwords) or _looping(text)):
        return replace(request, prompt="", hotwords="")
    if request.prompt and copies_prompt(text, request.prompt):
        return replace(request, prompt="")
    return None


def dedupe_boundary(previous: str, new: str, max_words: int = 6) -> str:
    """Drops the words at the start of `new` that repeat the end of `previous` (the same
    speech decoded twice because both decodes saw it), keeping `new`'s own casing."""
    prev_words = _normalise(previous).split()
    new_raw = new.split()
    new_words = [_normalise(w) for w in new_raw]
    for k in range(min(max_words, len(prev_words), len(new_words)), 0, -1):
        if prev_words[-k:] == new_words[:k]:
            return " ".join(new_raw[k:])
    return new


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())


def is_known_hallucination(text: str) -> bool:
    """True when the whole text is one of the phrases Whisper invents on silence."""
    norm = _normalise(text)
    return any(
        norm == phrase or (norm.startswith(phrase) and len(norm) < len(phrase) + 12)
        for phrase in map(_normalise, _HALLUCINATIONS)
    )
