"""The one place where server, client and dashboard agree: model names, tensor names,
event kinds, defaults and limits. Nothing else restates these."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from livetranslate.glossary import NO_GLOSSARY, Glossary, GlossaryError, parse_bytes
from livetranslate.languages import NAMES
from livetranslate.settings import VARIABLES
from livetranslate.words import Word, words_from_json, words_to_json

# --- models ---------------------------------------------------------------------------
PIPELINE = "pipeline"
VAD = "vad"
WHISPER = "whisper"
WHISPER_PARTIAL = "whisper_partial"  # interim results at idle CPU priority (cpu profile)
LLM = "llm"
TRANSLATE = "translate"
COMPLETENESS = "completeness"
ENHANCE = "enhance"
SPEAKERS_MODEL = "speakers"  # an utterance's AUDIO (FP32, 16 kHz) in, its speaker EMBEDDING out
EMBEDDING = "EMBEDDING"  # FP32 [256]: L2-normalised (livetranslate.stages.speakers)

# --- audio ----------------------------------------------------------------------------
SAMPLE_RATE_HZ = 16_000  # what vad and whisper work at
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 192_000
# a session's clock and ids go on across runs, within these (a year; ids a 32-bit reader takes)
MAX_TIME_BASE_S = 366 * 24 * 3600.0
MAX_SEGMENT_BASE = 2**31 - 1
MAX_SESSION_NAME = 200  # characters
MAX_CHUNK_SECONDS = 30.0  # one request may carry at most this much audio
MAX_SPEAKERS = 32  # NUM_SPEAKERS at most

# --- pipeline request tensors -----------------------------------------------------------
AUDIO = "AUDIO"  # INT16 PCM, mono, shape [n]
SESSION = "SESSION"  # BYTES [1], first request only
SAMPLE_RATE = "SAMPLE_RATE"  # INT32 [1], first request only
SOURCE_LANGUAGE = "SOURCE_LANGUAGE"  # BYTES [1], first request only
TARGET_LANGUAGE = "TARGET_LANGUAGE"  # BYTES [1], first request only
TRANSLATE_FLAG = "TRANSLATE"  # BOOL [1], first request only; default true
# A client that reconnects continues its session: numbering and clock go on from here.
SEGMENT_BASE = "SEGMENT_BASE"  # INT64 [1], first request only; default 0
TIME_BASE_S = "TIME_BASE_S"  # FP32 [1], first request only; default 0
PARTIALS = "PARTIALS"  # BOOL [1], first request only: interim `partial` events; default true
SPEAKERS = "SPEAKERS"  # BOOL [1], first request only: label each transcript's speaker; default false
NUM_SPEAKERS = "NUM_SPEAKERS"  # INT32 [1], first request only: at most this many speakers (0: unknown)
STORE = "STORE"  # BOOL [1], first request only: false keeps nothing of the session (no viewers); default true
# BYTES [1], first request only: the session's glossary as file text (livetranslate.glossary);
# also of `whisper` (HOTWORDS: the terms Whisper hears) and `translate` (the pairs for that text)
GLOSSARY = "GLOSSARY"

SUBSCRIBE = "SUBSCRIBE"  # BYTES [1]: a viewer's one request names the session to follow
# BYTES [1], JSON: an organiser's one request on a stored session (livetranslate.actions), with
# TARGET_LANGUAGE maybe (default: the speaker's): answered with the events it stored, then `end`
SESSION_ACTION = "SESSION_ACTION"
# BOOL [1], the launcher's only (internal token): `pipeline` ends every stream, viewer and sequence
DRAIN = "DRAIN"
# FP32 [1], with DRAIN: new speakers and viewers refused, live streams run this long at most, then ended
DRAIN_GRACE_S = "DRAIN_GRACE_S"
# `serve --drain-grace-s`: small by default (one machine); with replicas more (streams move on)
DRAIN_GRACE_ENV = "LIVETRANSLATE_DRAIN_GRACE_S"
DEFAULT_DRAIN_GRACE_S: float = VARIABLES[DRAIN_GRACE_ENV].default
SESSIONS = "sessions"
ACTION = "ACTION"  # sessions model: "list" or "get"
RESULT = "RESULT"  # sessions model: JSON

# The client key opens inference and metadata; the admin key model control, shared memory, statistics,
# trace, logging and configs (closed without one). Health stays open for probes.
API_KEY_HEADER = "x-livetranslate-key"
ADMIN_KEY_HEADER = "x-livetranslate-admin-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"  # Triton's gRPC expects restricted headers with it
GRPC_API_KEY_HEADER = GRPC_HEADER_PREFIX + API_KEY_HEADER
GRPC_ADMIN_KEY_HEADER = GRPC_HEADER_PREFIX + ADMIN_KEY_HEADER
API_KEY_ENV = "LIVETRANSLATE_API_KEY"
ADMIN_KEY_ENV = "LIVETRANSLATE_ADMIN_KEY"
# Internal models answer only BLS requests with the server's own token (random per start) in this
# parameter: clients reach `pipeline` and `sessions`, never `whisper` or `llm` directly.
INTERNAL_TOKEN_ENV = "LIVETRANSLATE_INTERNAL_TOKEN"
INTERNAL_PARAMETER = "livetranslate_internal"
# BLS parameter of an `llm` call (cpu profile): its lane (livetranslate.stages.llm.lanes: urgent, fast,
# background); not a tensor: the gpu profile's TensorRT-LLM ensemble ignores it.
LLM_LANE_PARAMETER = "livetranslate_llm_lane"

DEFAULT_SOURCE_LANGUAGE = "de"
DEFAULT_TARGET_LANGUAGE = "en"
AUTO_LANGUAGE = "auto"

# --- pipeline response tensors (one response = one event) ------------------------------------
KIND = "KIND"
TEXT = "TEXT"
SEGMENT_ID = "SEGMENT_ID"
START_S = "START_S"
END_S = "END_S"
LANGUAGE = "LANGUAGE"
LATENCY_MS = "LATENCY_MS"
FIRST_SEGMENT_ID = "FIRST_SEGMENT_ID"  # enhanced: the first segment the text covers
CHECK_COMPLETE = "CHECK_COMPLETE"  # BOOL, optional (enhance): false skips the LLM completeness check
TRANSLATE_WINDOW = "TRANSLATE_WINDOW"  # BOOL, optional (enhance): false drops a closed window (far behind)
FLUSH = "FLUSH"  # BOOL, optional (enhance, with sequence end): false drops the open window untranslated
ERROR = "ERROR"  # why this event failed (a translation that could not be made), else ""
NOTE = "NOTE"  # what the server, behind, did differently (the small model, no completeness check), else ""

# --- vad tensors: request AUDIO (FP32, 16 kHz); response: each utterance it closed, one entry each:
START_SAMPLE = "START_SAMPLE"  # INT64 [n], in the stream's 16 kHz sample clock
END_SAMPLE = "END_SAMPLE"  # INT64 [n]
SPEECH_END_SAMPLE = "SPEECH_END_SAMPLE"  # INT64 [n]: end of the last voiced frame
OPEN_SEGMENT_END = -1  # END_SAMPLE of one more entry, after them, while an utterance is open (partials)

# --- whisper tensors (batched): request AUDIO (FP32, 16 kHz), LANGUAGE ("" or "auto" detects), PROMPT
PROMPT = "PROMPT"
PREFIX = "PREFIX"  # BYTES: committed text of the audio's start; the answer is what follows
HOTWORDS = "HOTWORDS"  # BYTES: glossary terms Whisper hears before the prompt, kept when it is dropped
BEAM_SIZE = "BEAM_SIZE"  # INT32: 0 for the model's default; partials ask for 1
MAX_BEAM_SIZE = 10  # larger beams are refused: the gpu engines are built for 4, and CPU time
NO_SPEECH_PROB = "NO_SPEECH_PROB"
AVG_LOGPROB = "AVG_LOGPROB"
COMPRESSION_RATIO = "COMPRESSION_RATIO"
WORD_TIMES = "WORD_TIMES"  # BOOL, optional: each word's times too (a final's: one more decoder pass)
# BYTES, JSON (livetranslate.words): whisper's from its AUDIO's start; a transcript's in session time
WORDS = "WORDS"
SPEAKER = "SPEAKER"  # BYTES: the speaker's label (S1, S2, ...) of a transcript and its translations, else ""

# --- llm tensors: the TensorRT-LLM ensemble's names, so the gpu profile swaps in unchanged
TEXT_INPUT = "text_input"
MAX_TOKENS = "max_tokens"
TEMPERATURE = "temperature"
TOP_K = "top_k"
STOP_WORDS = "stop_words"
STREAM = "stream"
TEXT_OUTPUT = "text_output"
RETURN_YES_PROBABILITY = "return_yes_probability"  # cpu profile extra (BOOL)
YES_PROBABILITY = "yes_probability"  # cpu profile extra (FP32)
# gpu profile: tensorrt_llm's outputs as the `llm` ensemble maps them into `yes_probability`
GENERATION_LOGITS = "generation_logits"  # [beam, generated tokens, vocab] per request
SEQUENCE_LENGTH = "sequence_length"  # always produced: the step runs for every response

# --- translate / completeness / enhance tensors (besides TEXT, languages, segment fields)
CONTEXT = "CONTEXT"  # previous translation, for context
TRANSLATION = "TRANSLATION"
# translate (decoupled), optional BOOLs. URGENT: the speaker waits (the urgent lane); FAST: use the small
# model; INTERIM: the text so far as generated, then the translation; FAST_USED: the small model answered.
URGENT, FAST, INTERIM = "URGENT", "FAST", "INTERIM"
SUMMARY_FLAG = "SUMMARY"  # BOOL, optional (translate): TEXT is a piece of a meeting to summarize
FAST_USED = "FAST_USED"
COMPLETE, PROBABILITY = "COMPLETE", "PROBABILITY"

# Triton request flags for sequences (tritonserver.h: TRITONSERVER_REQUEST_FLAG_*).
FLAG_SEQUENCE_START = 1
FLAG_SEQUENCE_END = 2
WHISPER_LANGUAGES = frozenset(NAMES)  # the languages Whisper knows; "auto" asks it to detect


class ProtocolError(ValueError):
    """A request that breaks the protocol; its message is shown to the user as is."""


# An `end`'s text when this server refuses or stops a stream (full, draining): go on elsewhere or later
RETRY_ELSEWHERE = "retry elsewhere"


class EventKind(str, enum.Enum):
    PARTIAL = "partial"
    TRANSCRIPT = "transcript"
    # a translation as it is generated: the segment's `translation` replaces it; never stored
    PARTIAL_TRANSLATION = "partial_translation"
    TRANSLATION = "translation"
    ENHANCED = "enhanced"
    ERROR = "error"
    END = "end"
    # an organiser's correction of segment_id (`livetranslate edit`), kept beside the original: in the
    # spoken language the corrected transcript, in another that translated; the latest one wins
    CORRECTION = "correction"
    # the session's decisions and action items in `language` (`livetranslate summary`); the latest wins
    SUMMARY = "summary"
    # a speaker's name (`livetranslate speakers rename`): `speaker` is the label, `text` the name; the latest wins
    SPEAKER_NAME = "speaker_name"
    # a later look at the voices gave segment_id (and its translations) another `speaker`; the latest wins
    SPEAKER_UPDATE = "speaker_update"


# Interim events: for the speaker and live viewers, replaced by the segment's final event, never stored
INTERIM_KINDS = frozenset({EventKind.PARTIAL, EventKind.PARTIAL_TRANSLATION})


@dataclass(frozen=True)
class Event:
    """One pipeline response."""

    kind: EventKind
    text: str = ""
    segment_id: int = -1
    start_s: float = 0.0
    end_s: float = 0.0
    language: str = ""
    latency_ms: float = 0.0
    first_segment_id: int = -1  # enhanced: first segment covered (segment_id is the last)
    error: str = ""  # set when this event reports a failure (e.g. a translation that failed)
    note: str = ""  # set when the server was behind and made this event differently (NOTE)
    words: tuple[Word, ...] = ()  # a transcript's words with their times (WORDS), one per word of its text
    speaker: str = ""  # who said it (SPEAKER): a transcript's label and its translations', with SPEAKERS on

    def to_tensors(self) -> dict[str, np.ndarray]:
        return {
            KIND: np.array([self.kind.value.encode()], dtype=np.object_),
            TEXT: np.array([self.text.encode("utf-8")], dtype=np.object_),
            SEGMENT_ID: np.array([self.segment_id], dtype=np.int64),
            START_S: np.array([self.start_s], dtype=np.float32),
            END_S: np.array([self.end_s], dtype=np.float32),
            LANGUAGE: np.array([self.language.encode()], dtype=np.object_),
            LATENCY_MS: np.array([self.latency_ms], dtype=np.float32),
            FIRST_SEGMENT_ID: np.array([self.first_segment_id], dtype=np.int64),
            ERROR: np.array([self.error.encode("utf-8")], dtype=np.object_),
            NOTE: np.array([self.note.encode("utf-8")], dtype=np.object_),
            WORDS: np.array([words_to_json(self.words).encode("utf-8")], dtype=np.object_),
            SPEAKER: np.array([self.speaker.encode("utf-8")], dtype=np.object_),
        }

    @classmethod
    def from_tensors(cls, get: Callable[[str], np.ndarray | None]) -> Event:
        """Build an event from a response; `get(name)` returns that output as numpy."""

        def scalar(name: str):
            value = get(name)
            assert value is not None, f"response without {name}"  # every server version sends these
            return value.reshape(-1)[0]

        return cls(
            kind=EventKind(decode_text(get(KIND))),
            text=decode_text(get(TEXT)),
            segment_id=int(scalar(SEGMENT_ID)),
            start_s=round(float(scalar(START_S)), 3),
            end_s=round(float(scalar(END_S)), 3),
            language=decode_text(get(LANGUAGE)),
            latency_ms=round(float(scalar(LATENCY_MS)), 1),
            first_segment_id=int(scalar(FIRST_SEGMENT_ID)),
            error=decode_text(get(ERROR)),
            note=decode_text(get(NOTE)) if get(NOTE) is not None else "",  # an older server has none
            words=words_from_json(decode_text(get(WORDS))) if get(WORDS) is not None else (),
            speaker=decode_text(get(SPEAKER)),
        )

    def to_dict(self) -> dict:
        d = {**asdict(self), "kind": self.kind.value}
        for name in ("words", "speaker"):  # only where there are some (a transcript's, with speakers on)
            if not d[name]:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Event:
        """to_dict's inverse; fields this version does not know are left out."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "kind": EventKind(d["kind"]), "words": words_from_json(d.get("words") or "")})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class SessionOptions:
    """What the first request of a stream sets, validated."""

    session: str
    sample_rate: int = SAMPLE_RATE_HZ
    source_language: str = DEFAULT_SOURCE_LANGUAGE
    target_language: str = DEFAULT_TARGET_LANGUAGE
    translate: bool = True
    partials: bool = True
    segment_base: int = 0
    time_base_s: float = 0.0
    glossary: Glossary = NO_GLOSSARY
    speakers: bool = False  # label each transcript's speaker
    num_speakers: int = 0  # the organiser's hint: at most this many (0: unknown)
    store: bool = True  # false: nothing of the session is kept, and nobody can follow it

    def __post_init__(self):
        if not self.session or len(self.session) > MAX_SESSION_NAME or not self.session.isprintable():
            raise ProtocolError(f"SESSION must be a printable name of 1 to {MAX_SESSION_NAME} characters")
        if not MIN_SAMPLE_RATE_HZ <= self.sample_rate <= MAX_SAMPLE_RATE_HZ:
            raise ProtocolError(
                f"SAMPLE_RATE {self.sample_rate} Hz is out of range ({MIN_SAMPLE_RATE_HZ}..{MAX_SAMPLE_RATE_HZ} Hz)"
            )
        from livetranslate.languages import UnknownLanguage, code_for

        # names (German, Deutsch) and tags (de-DE) become codes; anything else says how to write it
        try:
            object.__setattr__(self, "source_language", code_for(self.source_language, allow_auto=True))
        except UnknownLanguage as exc:
            raise ProtocolError(f"spoken language (SOURCE_LANGUAGE): {exc}") from None
        try:
            object.__setattr__(self, "target_language", code_for(self.target_language))
        except UnknownLanguage as exc:
            raise ProtocolError(f"translation language (TARGET_LANGUAGE): {exc}") from None
        if not 0 <= self.num_speakers <= MAX_SPEAKERS:
            raise ProtocolError(f"NUM_SPEAKERS must be 0 (unknown) to {MAX_SPEAKERS}, got {self.num_speakers}")
        if not 0 <= self.segment_base <= MAX_SEGMENT_BASE:
            raise ProtocolError(f"SEGMENT_BASE must be 0 to {MAX_SEGMENT_BASE}, got {self.segment_base}")
        if not math.isfinite(self.time_base_s) or not 0 <= self.time_base_s <= MAX_TIME_BASE_S:
            raise ProtocolError(
                f"TIME_BASE_S must be a number of seconds from 0 to {MAX_TIME_BASE_S:.0f}, got {self.time_base_s}"
            )

    @property
    def whisper_language(self) -> str:
        """The language to force in Whisper, or "" to let it detect."""
        return "" if self.source_language == AUTO_LANGUAGE else self.source_language

    @classmethod
    def from_tensors(cls, get: Callable[[str], np.ndarray | None], default_session: str):
        def text(name, default):
            return decode_text(get(name), default).strip() or default

        def first(name, default, kind):
            value = get(name)
            return default if value is None or value.size == 0 else kind(value.reshape(-1)[0])

        return cls(
            glossary=decode_glossary(get(GLOSSARY)),
            session=text(SESSION, default_session),
            sample_rate=first(SAMPLE_RATE, SAMPLE_RATE_HZ, int),
            source_language=text(SOURCE_LANGUAGE, DEFAULT_SOURCE_LANGUAGE).lower(),
            target_language=text(TARGET_LANGUAGE, DEFAULT_TARGET_LANGUAGE).lower(),
            translate=first(TRANSLATE_FLAG, True, bool),
            partials=first(PARTIALS, True, bool),
            segment_base=first(SEGMENT_BASE, 0, int),
            time_base_s=first(TIME_BASE_S, 0.0, float),
            speakers=first(SPEAKERS, False, bool),
            num_speakers=first(NUM_SPEAKERS, 0, int),
            store=first(STORE, True, bool),
        )

    def to_tensors(self) -> dict[str, np.ndarray]:
        return {
            SESSION: np.array([self.session.encode()], dtype=np.object_),
            SAMPLE_RATE: np.array([self.sample_rate], dtype=np.int32),
            SOURCE_LANGUAGE: np.array([self.source_language.encode()], dtype=np.object_),
            TARGET_LANGUAGE: np.array([self.target_language.encode()], dtype=np.object_),
            TRANSLATE_FLAG: np.array([self.translate], dtype=bool),
            PARTIALS: np.array([self.partials], dtype=bool),
            SEGMENT_BASE: np.array([self.segment_base], dtype=np.int64),
            TIME_BASE_S: np.array([self.time_base_s], dtype=np.float32),
            **({GLOSSARY: np.array([self.glossary.to_text().encode()], dtype=np.object_)} if self.glossary else {}),
            # only when asked for: a server from before these takes the request as it was
            **({SPEAKERS: np.array([True])} if self.speakers else {}),
            **({NUM_SPEAKERS: np.array([self.num_speakers], np.int32)} if self.num_speakers else {}),
            **({STORE: np.array([False])} if not self.store else {}),
        }


def decode_glossary(value: np.ndarray | None) -> Glossary:
    """A GLOSSARY tensor, checked as strictly as the file it came from."""
    if value is None or value.size == 0:
        return NO_GLOSSARY
    if value.size != 1:
        raise ProtocolError(f"GLOSSARY must be one text (the glossary file), got {value.size} elements")
    item = value.reshape(-1)[0]
    try:
        return parse_bytes(item if isinstance(item, bytes) else str(item).encode("utf-8", "surrogatepass"))
    except GlossaryError as exc:
        raise ProtocolError(f"GLOSSARY: {exc}") from None


def validate_audio_chunk(audio: np.ndarray | None, sample_rate: int, *, last: bool) -> np.ndarray:
    """Checks one AUDIO tensor of the pipeline; returns it flat as int16."""
    if audio is None:
        raise ProtocolError("AUDIO is missing")
    if audio.dtype != np.int16:
        raise ProtocolError(f"AUDIO must be INT16 PCM, got {audio.dtype}")
    if audio.ndim != 1:
        raise ProtocolError(f"AUDIO must be a 1-D mono chunk, got shape {list(audio.shape)}")
    if audio.size == 0 and not last:
        raise ProtocolError("AUDIO chunk is empty: send at least one sample (empty only with sequence end)")
    if audio.size > MAX_CHUNK_SECONDS * sample_rate:
        raise ProtocolError(f"AUDIO chunk is longer than {MAX_CHUNK_SECONDS:.0f} s: send smaller chunks")
    return audio


def check_language(code: str, tensor: str = TARGET_LANGUAGE) -> str:
    """A translation language (a Whisper code), normalised: a speaker's target, or the
    language a viewer asks for (SUBSCRIBE with TARGET_LANGUAGE). ProtocolError when unknown."""
    normal = code.strip().lower()
    if normal not in WHISPER_LANGUAGES:
        raise ProtocolError(f"unknown {tensor} {code!r}: use a Whisper language code such as 'en' or 'fr'")
    return normal


def decode_text(value: np.ndarray | None, default: str = "") -> str:
    """The first element of a BYTES tensor as str."""
    if value is None or value.size == 0:
        return default
    item = value.reshape(-1)[0]
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
