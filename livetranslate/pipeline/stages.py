"""How the stream reaches the other models: the stage interface, and the in-process set
(the same logic without Triton, for benches and tests). The Triton set, BLS calls inside
the server, is livetranslate.triton.bls.TritonStages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from livetranslate.glossary import NO_GLOSSARY, Glossary
from livetranslate.stages.enhance import Enhanced, Enhancer, Piece, Tick, WindowOptions
from livetranslate.stages.summary import Summarizer
from livetranslate.stages.vad import Boundaries, Segmenter, VadOptions
from livetranslate.stages.whisper import AsrRequest, Transcription


@dataclass(frozen=True)
class SpokenTranslation:
    """The speaker's translation of one transcript, and whether the small model made it."""

    text: str
    fast: bool = False


@runtime_checkable
class Stages(Protocol):
    """What a stream needs of the other models. Three sets satisfy it: TritonStages (BLS calls
    inside the server, livetranslate.triton.bls), LocalStages (the same logic in this process,
    for benches) and the fast tests' scripted set (tests/scripted.py).

    `vad` and `enhance` are sequence-stateful: `start` opens a stream's sequence, `end` ends it
    (and for `enhance`, flushes the window unless `flush` is false)."""

    def vad(self, sequence_id: int, audio: np.ndarray, start: bool, end: bool) -> Boundaries: ...

    def whisper(self, request: AsrRequest, partial: bool = False) -> Transcription: ...

    def embed_speaker(self, audio: np.ndarray) -> np.ndarray:
        """The speaker embedding of one utterance's audio (16 kHz float; L2-normalised)."""
        ...

    def translate(
        self, text: str, source: str, target: str, context: str = "", glossary: Glossary = NO_GLOSSARY
    ) -> str: ...

    def summarize(self, text: str, source: str, target: str) -> str:
        """One piece of a meeting's transcript summarized in `target` (livetranslate.stages.summary:
        the LLM's answer, for `summary.parse`), in the LLM's background lane."""
        ...

    def translate_urgent(
        self,
        text: str,
        source: str,
        target: str,
        glossary: Glossary = NO_GLOSSARY,
        *,
        fast: bool = False,
        on_interim: Callable[[str], None] | None = None,
    ) -> SpokenTranslation:
        """The speaker's translation: first in the LLM's queue, on the small model when `fast`,
        the text so far to `on_interim` while it is generated (PlainUrgentTranslation: none of it)."""
        ...

    def enhance(
        self,
        sequence_id: int,
        step: Piece | Tick,
        source: str,
        target: str,
        start: bool,
        end: bool,
        check_complete: bool = True,
        flush: bool = True,
        glossary: Glossary = NO_GLOSSARY,
        translate_window: bool = True,
    ) -> list[Enhanced]: ...


class PlainUrgentTranslation:
    """translate_urgent for a stage set whose LLM has no queue to jump and no interim text:
    the speaker's translation is a plain `translate`."""

    def translate(
        self, text: str, source: str, target: str, context: str = "", glossary: Glossary = NO_GLOSSARY
    ) -> str:
        raise NotImplementedError

    def translate_urgent(
        self,
        text: str,
        source: str,
        target: str,
        glossary: Glossary = NO_GLOSSARY,
        *,
        fast: bool = False,
        on_interim: Callable[[str], None] | None = None,
    ) -> SpokenTranslation:
        return SpokenTranslation(self.translate(text, source, target, "", glossary))


class LocalStages(PlainUrgentTranslation):
    """The stages in this process. `translator` and `checker` are optional (a stream
    without translation needs neither)."""

    def __init__(
        self,
        engine,
        vad_options: VadOptions | None = None,
        translator=None,
        checker=None,
        window: WindowOptions | None = None,
        speaker_encoder=None,
    ):
        self.engine = engine
        self.speaker_encoder = speaker_encoder  # livetranslate.stages.speakers.encoder.SpeakerEncoder
        self.vad_options = vad_options or VadOptions()
        self.translator, self.checker = translator, checker
        self.window = window or WindowOptions()
        self._segmenters: dict[int, Segmenter] = {}
        self._enhancers: dict[int, Enhancer] = {}

    def vad(self, sequence_id: int, audio: np.ndarray, start: bool, end: bool) -> Boundaries:
        if start:
            self._segmenters[sequence_id] = Segmenter(self.vad_options)
        boundaries = self._segmenters[sequence_id].process(audio, end)
        if end:
            del self._segmenters[sequence_id]
        return boundaries

    def whisper(self, request: AsrRequest, partial: bool = False) -> Transcription:
        return self.engine.transcribe([request])[0]

    def embed_speaker(self, audio: np.ndarray) -> np.ndarray:
        if self.speaker_encoder is None:
            raise RuntimeError("no speaker encoder in this stage set")
        return self.speaker_encoder.embed_utterance(audio)

    def summarize(self, text: str, source: str, target: str) -> str:
        return Summarizer(self.translator.generate, self.translator.family).piece(text, source, target)

    def translate(
        self, text: str, source: str, target: str, context: str = "", glossary: Glossary = NO_GLOSSARY
    ) -> str:
        return self.translator.translate(text, source, target, context, glossary)

    def enhance(
        self,
        sequence_id,
        step,
        source,
        target,
        start,
        end,
        check_complete=True,
        flush=True,
        glossary=NO_GLOSSARY,
        translate_window=True,
    ):
        if start:
            self._enhancers[sequence_id] = Enhancer(
                self.window,
                lambda text, ctx: self.translate(text, source, target, ctx, glossary),
                lambda text: self.checker.check(text, source)[0],
            )
        enhancer = self._enhancers[sequence_id]
        out = enhancer.step(step, check_complete, translate_window)
        if end:
            out += enhancer.flush() if flush else []
            del self._enhancers[sequence_id]
        return out
