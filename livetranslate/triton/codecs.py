"""The tensors of every internal model, in one place: each stage's values (the domain types
of vad.py, whisper/, translate.py, completeness.py, enhance.py, llm/) to and from the
tensors its config.pbtxt declares. Both sides use these: the BLS caller (bls.py) and the
model (its model.py). numpy only, so tests check them without a server.

`get(name)` reads one tensor (None when absent): a request's input or a response's output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livetranslate import protocol as P
from livetranslate.glossary import NO_GLOSSARY, Glossary
from livetranslate.stages.enhance import Enhanced, Piece, Tick
from livetranslate.stages.llm import GenerationRequest
from livetranslate.stages.vad import Boundaries, Ongoing, Utterance
from livetranslate.stages.whisper import AsrRequest, Transcription

Get = Callable[[str], "np.ndarray | None"]
Tensors = dict[str, np.ndarray]


def text_tensor(value: str, batch: bool = False) -> np.ndarray:
    array = np.array([value.encode("utf-8")], dtype=np.object_)
    return array[None, :] if batch else array


def scalar(get: Get, name: str, default=None):
    value = get(name)
    return default if value is None or value.size == 0 else value.reshape(-1)[0].item()


def required(get: Get, name: str) -> np.ndarray:
    """A tensor that is always there: an output the model's config.pbtxt declares."""
    value = get(name)
    assert value is not None, f"no {name} tensor"  # Triton answers with every declared output
    return value


def text(get: Get, name: str, default: str = "") -> str:
    return P.decode_text(get(name), default)


def texts(get: Get, name: str) -> list[str]:
    value = get(name)
    items = [] if value is None else value.reshape(-1).tolist()
    return [i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items]


# --- vad: AUDIO (FP32, 16 kHz) in; the boundaries of the utterances it closed, then one more
# entry while an utterance is still open (END_SAMPLE = OPEN_SEGMENT_END) ---------------------
def vad_request(audio: np.ndarray) -> Tensors:
    return {P.AUDIO: np.ascontiguousarray(audio, dtype=np.float32)}


def vad_audio(get: Get) -> np.ndarray:
    audio = get(P.AUDIO)
    return audio.reshape(-1) if audio is not None else np.zeros(0, np.float32)


def boundaries_to_tensors(found: Boundaries) -> Tensors:
    rows = [(u.start_sample, u.end_sample, u.speech_end_sample) for u in found.closed]
    if found.ongoing is not None:
        rows.append((found.ongoing.start_sample, P.OPEN_SEGMENT_END, found.ongoing.speech_end_sample))
    starts, ends, speech_ends = (np.array(column, np.int64) for column in (zip(*rows) if rows else ((), (), ())))
    return {P.START_SAMPLE: starts, P.END_SAMPLE: ends, P.SPEECH_END_SAMPLE: speech_ends}


def boundaries_from_tensors(get: Get) -> Boundaries:
    names = (P.START_SAMPLE, P.END_SAMPLE, P.SPEECH_END_SAMPLE)
    rows = zip(*(required(get, name).reshape(-1).tolist() for name in names))
    closed, ongoing = [], None
    for start, end, speech_end in rows:
        if end == P.OPEN_SEGMENT_END:
            ongoing = Ongoing(start, speech_end)
        else:
            closed.append(Utterance(start, end, speech_end))
    return Boundaries(tuple(closed), ongoing)


# --- whisper (dynamic batching: a leading batch dimension) --------------------------------
def asr_request_to_tensors(request: AsrRequest) -> Tensors:
    return {
        P.AUDIO: request.audio.astype(np.float32)[None, :],
        P.LANGUAGE: text_tensor(request.language, batch=True),
        P.PROMPT: text_tensor(request.prompt, batch=True),
        P.PREFIX: text_tensor(request.prefix, batch=True),
        P.HOTWORDS: text_tensor(request.hotwords, batch=True),  # always: batches mix streams with and without
        P.BEAM_SIZE: np.array([[request.beam_size]], dtype=np.int32),
        P.WORD_TIMES: np.array([[request.word_times]], dtype=np.bool_),
    }


def asr_request_from(get: Get) -> AsrRequest:
    audio = get(P.AUDIO)
    if audio is None or audio.size == 0:
        raise P.ProtocolError("AUDIO is missing or empty")
    beam_size = int(scalar(get, P.BEAM_SIZE, 0))
    if not 0 <= beam_size <= P.MAX_BEAM_SIZE:
        raise P.ProtocolError(f"BEAM_SIZE must be 0 (the default) to {P.MAX_BEAM_SIZE}, got {beam_size}")
    return AsrRequest(
        audio=np.ascontiguousarray(audio.reshape(-1), dtype=np.float32),
        language=text(get, P.LANGUAGE).strip().replace(P.AUTO_LANGUAGE, ""),
        prompt=text(get, P.PROMPT),
        prefix=text(get, P.PREFIX),
        beam_size=beam_size,
        hotwords=text(get, P.HOTWORDS),
        word_times=bool(scalar(get, P.WORD_TIMES, False)),
    )


TRANSCRIPTION_OUTPUTS = (P.TEXT, P.LANGUAGE, P.NO_SPEECH_PROB, P.AVG_LOGPROB, P.COMPRESSION_RATIO, P.WORDS)


def transcription_to_tensors(result: Transcription) -> Tensors:
    return {
        P.TEXT: text_tensor(result.text, batch=True),
        P.LANGUAGE: text_tensor(result.language, batch=True),
        P.NO_SPEECH_PROB: np.array([[result.no_speech_prob]], dtype=np.float32),
        P.AVG_LOGPROB: np.array([[result.avg_logprob]], dtype=np.float32),
        P.COMPRESSION_RATIO: np.array([[result.compression_ratio]], dtype=np.float32),
        P.WORDS: text_tensor(P.words_to_json(result.words), batch=True),
    }


def transcription_from_tensors(get: Get) -> Transcription:
    return Transcription(
        text=text(get, P.TEXT),
        language=text(get, P.LANGUAGE),
        no_speech_prob=float(scalar(get, P.NO_SPEECH_PROB)),
        avg_logprob=float(scalar(get, P.AVG_LOGPROB)),
        compression_ratio=float(scalar(get, P.COMPRESSION_RATIO)),
        words=P.words_from_json(text(get, P.WORDS)),
    )


# --- speakers ------------------------------------------------------------------------------------
def speaker_audio_to_tensors(audio: np.ndarray) -> Tensors:
    return {P.AUDIO: np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)}


def speaker_audio_from(get: Get) -> np.ndarray:
    audio = get(P.AUDIO)
    if audio is None or audio.size == 0:
        raise P.ProtocolError("AUDIO is missing or empty")
    return np.ascontiguousarray(audio.reshape(-1), dtype=np.float32)


def embedding_to_tensors(embedding: np.ndarray) -> Tensors:
    return {P.EMBEDDING: np.asarray(embedding, dtype=np.float32).reshape(-1)}


def embedding_from(get: Get) -> np.ndarray:
    return np.asarray(required(get, P.EMBEDDING), dtype=np.float32).reshape(-1)


# --- translate and completeness ------------------------------------------------------------
@dataclass(frozen=True)
class TextRequest:
    text: str
    source: str
    target: str = P.DEFAULT_TARGET_LANGUAGE
    context: str = ""
    glossary: Glossary = NO_GLOSSARY  # translate: the session's


def translate_request_to_tensors(
    request: TextRequest, *, urgent: bool = False, fast: bool = False, interim: bool = False, summary: bool = False
) -> Tensors:
    tensors = {
        P.TEXT: text_tensor(request.text),
        P.SOURCE_LANGUAGE: text_tensor(request.source),
        P.TARGET_LANGUAGE: text_tensor(request.target),
        P.CONTEXT: text_tensor(request.context),
    }
    if request.glossary:
        tensors[P.GLOSSARY] = text_tensor(request.glossary.to_text())
    for name, on in ((P.URGENT, urgent), (P.FAST, fast), (P.INTERIM, interim), (P.SUMMARY_FLAG, summary)):
        if on:
            tensors[name] = np.array([True], dtype=bool)
    return tensors


@dataclass(frozen=True)
class TranslateFlags:
    urgent: bool = False
    fast: bool = False
    interim: bool = False
    summary: bool = False  # TEXT is a piece of a meeting: answer its summary (stages.summary)


def translate_flags_from(get: Get) -> TranslateFlags:
    return TranslateFlags(
        bool(scalar(get, P.URGENT, False)),
        bool(scalar(get, P.FAST, False)),
        bool(scalar(get, P.INTERIM, False)),
        bool(scalar(get, P.SUMMARY_FLAG, False)),
    )


@dataclass(frozen=True)
class Translated:
    text: str
    interim: bool = False  # the text so far, the translation still being generated
    fast: bool = False  # made by the small model (the stream was behind)


TRANSLATION_OUTPUTS = (P.TRANSLATION, P.INTERIM, P.FAST_USED)


def completeness_request_to_tensors(request: TextRequest) -> Tensors:
    return {P.TEXT: text_tensor(request.text), P.SOURCE_LANGUAGE: text_tensor(request.source)}


def text_request_from(get: Get) -> TextRequest:
    """A `translate` or `completeness` request (completeness has no target or context)."""
    return TextRequest(
        text(get, P.TEXT),
        text(get, P.SOURCE_LANGUAGE, P.DEFAULT_SOURCE_LANGUAGE),
        text(get, P.TARGET_LANGUAGE, P.DEFAULT_TARGET_LANGUAGE),
        text(get, P.CONTEXT),
        P.decode_glossary(get(P.GLOSSARY)),
    )


def translation_to_tensors(translation: str, *, interim: bool = False, fast: bool = False) -> Tensors:
    return {
        P.TRANSLATION: text_tensor(translation),
        P.INTERIM: np.array([interim], dtype=bool),
        P.FAST_USED: np.array([fast], dtype=bool),
    }


def translation_from(answers: list[dict[str, np.ndarray]]) -> Translated:
    """The last of a `translate` call's responses (a decoupled model's stream of them)."""
    if not answers:
        raise P.ProtocolError("translate returned no translation")
    get = answers[-1].get
    return Translated(
        text(get, P.TRANSLATION), bool(scalar(get, P.INTERIM, False)), bool(scalar(get, P.FAST_USED, False))
    )


def completeness_to_tensors(complete: bool, probability: float) -> Tensors:
    return {P.COMPLETE: np.array([complete], dtype=bool), P.PROBABILITY: np.array([probability], dtype=np.float32)}


# --- enhance: one step of a stream's window (a transcript or a tick) per request; the
# enhanced translations it produced (zero or more rows) per response ------------------------
@dataclass(frozen=True)
class EnhanceRequest:
    step: Piece | Tick
    source: str
    target: str
    check_complete: bool = True  # false while the stream's LLM calls are behind
    flush: bool = True  # on the sequence's end: translate the window left (false: drop it)
    glossary: Glossary = NO_GLOSSARY  # the session's, with the sequence's start
    translate_window: bool = True  # false while the stream's enhanced translations are far behind


def enhance_request_to_tensors(request: EnhanceRequest) -> Tensors:
    step = request.step
    piece = step if isinstance(step, Piece) else Piece(-1, "", step.now_s, step.now_s)  # a tick has no text
    return {
        P.TEXT: text_tensor(piece.text),
        P.SEGMENT_ID: np.array([piece.segment_id], np.int64),
        P.START_S: np.array([piece.start_s], np.float32),
        P.END_S: np.array([piece.end_s], np.float32),
        P.SOURCE_LANGUAGE: text_tensor(request.source),
        P.TARGET_LANGUAGE: text_tensor(request.target),
        P.CHECK_COMPLETE: np.array([request.check_complete], dtype=bool),
        P.FLUSH: np.array([request.flush], dtype=bool),
        P.TRANSLATE_WINDOW: np.array([request.translate_window], dtype=bool),
        **({P.GLOSSARY: text_tensor(request.glossary.to_text())} if request.glossary else {}),
        **({P.SPEAKER: text_tensor(piece.speaker)} if piece.speaker else {}),
    }


def enhance_request_from(get: Get) -> EnhanceRequest:
    words, end_s = text(get, P.TEXT), float(scalar(get, P.END_S, 0.0))
    step = (
        Piece(
            int(scalar(get, P.SEGMENT_ID, -1)), words, float(scalar(get, P.START_S, 0.0)), end_s, text(get, P.SPEAKER)
        )
        if words.strip()
        else Tick(end_s)
    )
    return EnhanceRequest(
        step,
        text(get, P.SOURCE_LANGUAGE, P.DEFAULT_SOURCE_LANGUAGE),
        text(get, P.TARGET_LANGUAGE, P.DEFAULT_TARGET_LANGUAGE),
        bool(scalar(get, P.CHECK_COMPLETE, True)),
        bool(scalar(get, P.FLUSH, True)),
        P.decode_glossary(get(P.GLOSSARY)),
        bool(scalar(get, P.TRANSLATE_WINDOW, True)),
    )


ENHANCED_OUTPUTS = (P.TEXT, P.FIRST_SEGMENT_ID, P.SEGMENT_ID, P.START_S, P.END_S)


def enhanced_to_tensors(items: list[Enhanced]) -> Tensors:
    return {
        P.TEXT: np.array([i.text.encode("utf-8") for i in items], dtype=np.object_),
        P.FIRST_SEGMENT_ID: np.array([i.first_segment_id for i in items], np.int64),
        P.SEGMENT_ID: np.array([i.last_segment_id for i in items], np.int64),
        P.START_S: np.array([i.start_s for i in items], np.float32),
        P.END_S: np.array([i.end_s for i in items], np.float32),
    }


def enhanced_from_tensors(get: Get) -> list[Enhanced]:
    names = (P.FIRST_SEGMENT_ID, P.SEGMENT_ID, P.START_S, P.END_S)
    numbers = [required(get, name).reshape(-1).tolist() for name in names]
    return [
        Enhanced(first, last, words, start, end, reason="")
        for words, first, last, start, end in zip(texts(get, P.TEXT), *numbers)
    ]


# --- llm: the TensorRT-LLM ensemble's I/O (batch dimension included) ------------------------
def generation_to_tensors(request: GenerationRequest, stream: bool = False) -> Tensors:
    tensors = {
        P.TEXT_INPUT: text_tensor(request.prompt, batch=True),
        P.MAX_TOKENS: np.array([[request.max_tokens]], dtype=np.int32),
        P.TEMPERATURE: np.array([[request.temperature]], dtype=np.float32),
        P.TOP_K: np.array([[request.top_k]], dtype=np.int32),
        P.STREAM: np.array([[stream]], dtype=bool),
    }
    if request.stop:
        tensors[P.STOP_WORDS] = np.array([[w.encode() for w in request.stop]], dtype=np.object_)
    return tensors


def yes_probability_request(prompt: str) -> Tensors:
    return {
        P.TEXT_INPUT: text_tensor(prompt, batch=True),
        P.MAX_TOKENS: np.array([[1]], dtype=np.int32),
        P.RETURN_YES_PROBABILITY: np.array([[True]], dtype=bool),
    }


def generation_from(get: Get) -> GenerationRequest:
    prompt = text(get, P.TEXT_INPUT)
    if not prompt:
        raise P.ProtocolError("text_input is empty")
    return GenerationRequest(
        prompt,
        max_tokens=int(scalar(get, P.MAX_TOKENS, 200)),
        temperature=float(scalar(get, P.TEMPERATURE, 0.0)),
        top_k=int(scalar(get, P.TOP_K, 1)),
        stop=tuple(texts(get, P.STOP_WORDS)),
    )
