"""How one stream's speech becomes Whisper requests, and Whisper's answers committed text.

Decoding each utterance alone throws away much of Whisper's accuracy (bench/results/
policies.md): Whisper was trained on 30 s windows with the text before them. The `context` policy gives it that back. When an utterance
closes, Whisper hears a window of the recent audio that ends with the utterance, and its
decoder is forced through the text already committed for that audio (the `prefix`); what
it generates after the prefix is the new utterance's text, decoded with the audio and the
words before it in view. Older committed text goes in as the prompt. The encoder hears at
least 15 s (audio padded with silence: AsrOptions.min_window_s), so a context that keeps the
window under that is nearly free.

Whisper given a context window sometimes stops early: it returns the first sentence of a
long utterance and ends, or nothing, or repeats the prefix. Such an answer (empty, a copy of
the prefix, or far fewer characters than the utterance's speech holds: `min_chars_per_s`) is
decoded again without context, and the retry's answer is kept when it says more.

Committed text is final: a later decode never changes it, it only conditions on it.
`utterance` is the cheap policy: the utterance with 1 s of lead-in, the previous
transcripts as prompt.

Interim results (`partial`) use the same request shape over the still-open utterance,
greedy, and are never committed.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

import numpy as np

from livetranslate.protocol import SAMPLE_RATE_HZ
from livetranslate.stages.whisper import AsrRequest, copies_prompt, dedupe_boundary

POLICIES = ("context", "utterance")
# written with far fewer characters per second of speech: the short-answer check skips them
FEW_CHARACTERS = frozenset({"zh", "yue", "ja", "ko"})


@dataclass(frozen=True)
class DecodeOptions:
    policy: str = "context"
    # Committed utterances that started at most this long before the new one are heard
    # again as context (the whole window stays under Whisper's 30 s). Longer context is more
    # accurate and costs decode time (the trade-off: bench/results/policies.md); 10 s keeps
    # final transcripts prompt on a small CPU (bench/results/streaming.md). On a GPU a longer
    # context costs nearly nothing.
    context_s: float = 10.0
    max_window_s: float = 28.0
    prompt_segments: int = 2  # committed transcripts before the window, as prompt
    # utterance policy: audio before the utterance given to Whisper too, so it hears the
    # start of the first word in context (bench/results/policies.md)
    lead_in_s: float = 1.0
    # interim results: every this many seconds of open speech (0: off)
    partial_interval_s: float = 1.0
    partial_min_s: float = 0.6  # no partial before this much speech
    partial_beam_size: int = 1
    # A partial needs the speaker to be talking: after this much silence the utterance is
    # about to close, and a partial decode then would only delay its final.
    partial_pause_s: float = 0.15
    # Partials run only while Whisper was busy less than this share of the last few
    # seconds (finals and partials of all streams): under load they go first.
    partial_max_busy: float = 0.5
    # A context answer with fewer characters than this per second of the utterance's speech
    # (over at least short_check_s of it) is decoded again without context: Whisper ended the
    # window early and left sentences out. Speech in alphabetic scripts holds about 12-15
    # characters a second (German too); a false alarm costs one more decode, as the longer
    # answer is kept. Not applied to the languages of FEW_CHARACTERS; 0 turns it off.
    min_chars_per_s: float = 6.0
    short_check_s: float = 3.0
    # finals carry each word's times (Whisper's alignment, one more decoder pass per final)
    word_times: bool = True

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"unknown decoding policy {self.policy!r}: use one of {', '.join(POLICIES)}")
        if not 0 < self.max_window_s <= 30 or self.context_s < 0 or self.partial_interval_s < 0:
            raise ValueError("max_window_s must be in (0, 30], context_s and partial_interval_s >= 0")
        if self.min_chars_per_s < 0 or self.short_check_s < 0:
            raise ValueError("min_chars_per_s and short_check_s must be >= 0")


def _slice(chunks, start: int, end: int) -> np.ndarray:
    parts = [(first, a) for first, a in chunks if first < end and first + len(a) > start]
    if not parts or end <= start:
        return np.zeros(0, np.float32)
    joined = np.concatenate([a for _, a in parts])
    return joined[start - parts[0][0] : end - parts[0][0]]


@dataclass(frozen=True)
class AudioView:
    """The history as it was at one moment, for another thread: its chunks are never
    changed after they arrive, so the view costs a tuple of references."""

    chunks: tuple[tuple[int, np.ndarray], ...]
    end: int

    @property
    def start(self) -> int:
        return self.chunks[0][0] if self.chunks else self.end

    def slice(self, start: int, end: int) -> np.ndarray:
        return _slice(self.chunks, max(start, self.start), min(end, self.end))


class AudioHistory:
    """The stream's recent 16 kHz audio as the chunks it came in (nothing copied on the
    audio path); slices are joined only when a request needs them."""

    def __init__(self, keep_s: float = 45.0):
        self._keep = int(keep_s * SAMPLE_RATE_HZ)
        self._chunks: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self.end = 0  # samples appended so far

    @property
    def start(self) -> int:
        """First sample still held."""
        return self._chunks[0][0] if self._chunks else self.end

    def append(self, audio: np.ndarray) -> None:
        if len(audio):
            self._chunks.append((self.end, audio))
            self.end += len(audio)
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) < self.end - self._keep:
            self._chunks.popleft()

    def slice(self, start: int, end: int) -> np.ndarray:
        return _slice(self._chunks, max(start, self.start), min(end, self.end))

    def view(self) -> AudioView:
        return AudioView(tuple(self._chunks), self.end)


@dataclass(frozen=True)
class Committed:
    start_sample: int
    end_sample: int
    text: str  # "" for an utterance the speech filter dropped: context never spans it


@dataclass(frozen=True)
class Plan:
    """One Whisper request and what is needed to read its answer."""

    request: AsrRequest
    context_text: str  # committed text the audio window starts with ("" without context)
    partial: bool = False
    audio_start: int = 0  # the sample (stream clock) the request's audio starts at: its words' times count from it


class StreamDecoder:
    """One stream's decoding state: committed utterances and the policy."""

    def __init__(self, options: DecodeOptions, language: str, hotwords: str = ""):
        self.options = options
        self.language = language
        self.hotwords = hotwords  # the session glossary's terms, heard with every request
        # a snapshot holds a tuple instead (it plans, it never commits)
        self.committed: collections.deque[Committed] | tuple[Committed, ...] = collections.deque(maxlen=64)

    # --- requests -------------------------------------------------------------------------
    def plan(
        self,
        history: AudioHistory | AudioView,
        start: int,
        end: int,
        *,
        partial: bool = False,
        use_context: bool = True,
    ) -> Plan:
        """The request for speech from `start` to `end` (samples on the stream clock)."""
        opts = self.options
        beam = opts.partial_beam_size if partial else 0
        use_context = use_context and opts.policy == "context"
        context = self._context(history, start, end) if use_context else []
        if context:
            window_start = context[0].start_sample
            earlier = [c.text for c in self.committed if c.end_sample <= window_start and c.text]
            request = AsrRequest(
                history.slice(window_start, end),
                self.language,
                prompt=" ".join(earlier[-opts.prompt_segments :]) if opts.prompt_segments else "",
                prefix=" ".join(c.text for c in context),
                beam_size=beam,
                hotwords=self.hotwords,
                word_times=not partial and opts.word_times,
            )
            return Plan(request, request.prefix, partial, window_start)
        lead_start = max(start - int(opts.lead_in_s * SAMPLE_RATE_HZ), history.start)
        own = history.slice(start, end)
        audio = np.concatenate([history.slice(lead_start, start), own]) if lead_start < start else own
        texts = [c.text for c in self.committed if c.text]
        request = AsrRequest(
            audio,
            self.language,
            prompt=" ".join(texts[-opts.prompt_segments :]) if opts.prompt_segments else "",
            beam_size=beam,
            hotwords=self.hotwords,
            word_times=not partial and opts.word_times,
        )
        # the lead-in may hold the end of the previous utterance: its words are dropped
        heard_before = self.committed and lead_start < self.committed[-1].end_sample
        return Plan(
            request, texts[-1] if texts and heard_before else "", partial, lead_start if lead_start < start else start
        )

    def _context(self, history: AudioHistory | AudioView, start: int, end: int) -> list[Committed]:
        """The newest committed utterances, contiguous and all still in `history`, that fit."""
        opts = self.options
        chosen: list[Committed] = []
        for c in reversed(self.committed):
            if (
                not c.text
                or c.start_sample < history.start
                or start - c.start_sample > opts.context_s * SAMPLE_RATE_HZ
                or end - c.start_sample > opts.max_window_s * SAMPLE_RATE_HZ
            ):
                break
            chosen.append(c)
        return chosen[::-1]

    # --- answers --------------------------------------------------------------------------
    def retry_without_context(self, plan: Plan, text: str, speech_s: float = 0.0) -> bool:
        """Whisper sometimes stops right after the prefix, repeats it, or stops after the
        first sentence of `speech_s` seconds of speech: decode again alone."""
        if not plan.request.prefix:
            return False
        return self._failed(plan, text) or self.too_short(text, speech_s)

    def too_short(self, text: str, speech_s: float) -> bool:
        """Far fewer characters than `speech_s` seconds of speech hold."""
        opts = self.options
        return (
            opts.min_chars_per_s > 0
            and speech_s >= opts.short_check_s
            and self.language not in FEW_CHARACTERS
            and len(text.strip()) < opts.min_chars_per_s * speech_s
        )

    def prefer_retry(self, plan: Plan, text: str, retry: Plan, retry_text: str) -> bool:
        """After retry_without_context: the retry replaces an empty or copying answer, and a
        short one only when it says more."""
        if self._failed(plan, text):
            return True
        return len(self.clean(retry, retry_text)) > len(self.clean(plan, text))

    @staticmethod
    def _failed(plan: Plan, text: str) -> bool:
        return not text.strip() or copies_prompt(text, plan.request.prefix)

    def clean(self, plan: Plan, text: str) -> str:
        """The new words only: what repeats the end of the committed text is dropped."""
        text = text.strip()
        if plan.context_text:
            text = dedupe_boundary(plan.context_text, text)
        return text

    def commit(self, start: int, end: int, text: str) -> None:
        if not isinstance(self.committed, collections.deque):
            raise TypeError("a snapshot of a decoder cannot commit")
        self.committed.append(Committed(start, end, text))

    def snapshot(self) -> StreamDecoder:
        """This decoder as it is now, for another thread: it plans, it cannot commit."""
        frozen = StreamDecoder(self.options, self.language, self.hotwords)
        frozen.committed = tuple(self.committed)
        return frozen


def repeated_across_boundaries(texts: list[str], min_words: int = 3) -> list[str]:
    """Word sequences (at least `min_words` long) that end one segment and start the next:
    the signature of the same speech committed twice at a window boundary."""
    found = []
    words = [re.sub(r"[^\w' ]+", " ", t.lower()).split() for t in texts]
    for previous, current in zip(words, words[1:]):
        for k in range(min(len(previous), len(current)), min_words - 1, -1):
            if previous[-k:] == current[:k]:
                found.append(" ".join(current[:k]))
                break
    return found
