"""Each word's times from Whisper's cross-attention alignment, as plain logic.

CTranslate2's `align` runs the decoder once more over the text it generated and returns,
per token, the path that dynamic time warping found through the attention of Whisper's
alignment heads: pairs of (token index, audio frame), 50 frames a second. A word starts at
the frame where the path reaches its first token and ends where it reaches the next word's.
This module turns that path into words: it drops the words of the forced prefix (context
decoding: they were said before this utterance), folds punctuation into its word, and cuts
words the path stretched over a pause (the first word after silence, the last before it)
to a length words have in this speech."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from livetranslate.protocol import Word

FRAMES_PER_S = 50  # Whisper's encoder: one frame per 20 ms
MAX_WORD_S = 0.7  # what the typical word length is taken as at most
SENTENCE_END = ".!?。！？"
OPENING = "\"'“„‚‘«¿¡([{"  # punctuation that belongs to the word after it
FRAME_S = 0.01  # the energy frames speech is found in
VOICED_BELOW_PEAK_DB = 30.0  # a frame this far below the loudest is still speech...
VOICED_ABOVE_FLOOR_DB = 10.0  # ... when it is this far above the quiet (the 10th percentile)
SNAP_S = 0.3  # how far before a word's aligned start (after its end) speech is looked for


def word_times(
    words: Sequence[str],
    word_tokens: Sequence[Sequence[int]],
    path: Sequence[tuple[int, int]],
    token_probs: Sequence[float],
    *,
    skip_tokens: int = 0,
    offset_s: float = 0.0,
) -> tuple[Word, ...]:
    """The words after the first `skip_tokens` tokens (a prefix), in seconds from `offset_s`.

    `words` and `word_tokens` are the tokenizer's split of the aligned tokens (a last,
    special word such as <|endoftext|> is ignored); `path` the (token, frame) pairs;
    `token_probs` each token's probability."""
    reached: dict[int, int] = {}
    for token, frame in path:
        reached.setdefault(int(token), int(frame))
    if not reached:
        return ()
    last_frame = max(reached.values())

    def at(token: int) -> float:
        # every token is on a monotonic path; the end of the text is where the path ends
        return offset_s + reached.get(token, last_frame) / FRAMES_PER_S

    found: list[Word] = []
    begin = 0
    for text, tokens in zip(words, word_tokens):
        end = begin + len(tokens)
        if text.startswith("<|") and text.endswith("|>"):
            break  # end of text
        if end > skip_tokens and text.strip():
            probs = [float(p) for p in token_probs[begin:end]]
            found.append(Word(text, at(begin), at(end), sum(probs) / len(probs) if probs else 0.0))
        begin = end
    return tuple(_trim_long(_fold_punctuation(found)))


def _fold_punctuation(words: list[Word]) -> list[Word]:
    """Punctuation on its own joins its word: a closing mark the word before, an opening one
    the word after. Words keep their leading space as the tokenizer gives it (" Guten")."""
    out: list[Word] = []
    carried = ""  # opening marks waiting for their word
    for w in words:
        bare = w.word.strip()
        if bare and all(not c.isalnum() for c in bare):
            # a mark with a space before it that can open (or the first) opens; else it closes
            if not out or (w.word.startswith(" ") and all(c in OPENING for c in bare)):
                carried += bare
            else:
                prev = out[-1]
                out[-1] = Word(prev.word + bare, prev.start_s, max(prev.end_s, w.start_s), prev.probability)
            continue
        if carried:
            lead = " " if w.word.startswith(" ") else ""
            w = Word(lead + carried + w.word.lstrip(), w.start_s, w.end_s, w.probability)
            carried = ""
        out.append(w)
    if carried and out:
        prev = out[-1]
        out[-1] = Word(prev.word + carried, prev.start_s, prev.end_s, prev.probability)
    return out


def _trim_long(words: list[Word]) -> list[Word]:
    """A word beside a pause (the first, the last, one after or before a sentence's end)
    that lasts more than twice the typical word is cut to that: the path spent the pause on it."""
    durations = [w.end_s - w.start_s for w in words if w.end_s > w.start_s]
    if not durations:
        return words
    longest = 2 * min(MAX_WORD_S, statistics.median(durations))
    out = list(words)
    for i, w in enumerate(out):
        if w.end_s - w.start_s <= longest:
            continue
        after_pause = i == 0 or out[i - 1].word.rstrip().endswith(tuple(SENTENCE_END))
        before_pause = i == len(out) - 1 or w.word.rstrip().endswith(tuple(SENTENCE_END))
        if after_pause:
            out[i] = Word(w.word, w.end_s - longest, w.end_s, w.probability)
        elif before_pause:
            out[i] = Word(w.word, w.start_s, w.start_s + longest, w.probability)
    return out


def snap_to_speech(words: tuple[Word, ...], audio: np.ndarray, rate: int, offset_s: float = 0.0) -> tuple[Word, ...]:
    """The alignment puts the first word after a pause at the pause's start (the path begins
    at the window's first frame), and may end the last one late: a word beside a pause starts
    at the first frame of speech in its span (or up to SNAP_S before it) and ends at the last.
    `audio` is what the words' times count from, less `offset_s` seconds."""
    if not words or len(audio) < rate * FRAME_S * 2:
        return words
    hop = int(rate * FRAME_S)
    frames = np.asarray(audio[: len(audio) // hop * hop], dtype=np.float32).reshape(-1, hop)
    db = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)
    voiced = db > max(db.max() - VOICED_BELOW_PEAK_DB, np.percentile(db, 10) + VOICED_ABOVE_FLOOR_DB)

    def frame(t: float) -> int:
        return int(np.clip(round((t - offset_s) / FRAME_S), 0, len(voiced)))

    out = list(words)
    for i, w in enumerate(out):
        after_pause = i == 0 or out[i - 1].word.rstrip().endswith(tuple(SENTENCE_END))
        before_pause = i == len(out) - 1 or w.word.rstrip().endswith(tuple(SENTENCE_END))
        start, end = w.start_s, w.end_s
        if after_pause:
            lo = frame(max(w.start_s - SNAP_S, out[i - 1].end_s if i else -np.inf))
            hits = np.flatnonzero(voiced[lo : frame(w.end_s)])
            if hits.size:
                start = offset_s + (lo + hits[0]) * FRAME_S
        if before_pause:
            lo = frame(start)
            hi = frame(min(w.end_s + SNAP_S, out[i + 1].start_s if i + 1 < len(out) else np.inf))
            hits = np.flatnonzero(voiced[lo:hi])
            if hits.size:
                end = offset_s + (lo + hits[-1] + 1) * FRAME_S
        if end > start:
            out[i] = Word(w.word, round(start, 3), round(end, 3), w.probability)
    return tuple(out)
