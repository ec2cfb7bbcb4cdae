"""A final transcript's words with their times: one entry per word of the text the reader
gets, on the session's clock.

Whisper's alignment times the words it decoded, from the start of the request's audio; the
text a transcript carries can differ from them (a repeat of the previous line dropped,
numbers written as digits, "zwanzig Prozent" as "20 %"). The two are matched word by word
(difflib, on lower-case letters and digits): a word of the text that Whisper said the same
way takes its time; a run of the text's words that replaces a run of Whisper's shares that
run's time in proportion to their lengths; a word with nothing to match gets the gap
between its neighbours. Times only go forward, and stay inside the span given (the audio
Whisper heard, after the previous transcript's words)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from livetranslate.protocol import Word

_NOT_WORD = re.compile(r"[^\w]+")


def _key(word: str) -> str:
    return _NOT_WORD.sub("", word.lower())


def words_for_text(text: str, heard: Sequence[Word], offset_s: float, span: tuple[float, float]) -> tuple[Word, ...]:
    """TEXT's words (split on white space) timed from HEARD (Whisper's, `offset_s` seconds
    before the session's clock), inside SPAN (session time).
    Without HEARD, none: times the engine did not give are not invented."""
    tokens = text.split()
    said = [w for w in heard if w.word.strip()]
    if not tokens or not said:
        return ()
    said = [Word(w.word.strip(), w.start_s + offset_s, w.end_s + offset_s, w.probability) for w in said]
    times: list[tuple[float, float, float] | None] = [None] * len(tokens)
    matcher = difflib.SequenceMatcher(a=[_key(w.word) for w in said], b=[_key(t) for t in tokens], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(j2 - j1):
                w = said[i1 + k]
                times[j1 + k] = (w.start_s, w.end_s, w.probability)
        elif tag == "replace":
            probability = sum(w.probability for w in said[i1:i2]) / (i2 - i1)
            for j, (start, end) in zip(range(j1, j2), _share(said[i1].start_s, said[i2 - 1].end_s, tokens[j1:j2])):
                times[j] = (start, end, probability)
    _fill_gaps(times, tokens, span)
    return _forward(tokens, times, span)


def _share(start: float, end: float, tokens: Sequence[str]) -> list[tuple[float, float]]:
    """START..END split among TOKENS in proportion to their lengths."""
    lengths = [max(1, len(t)) for t in tokens]
    total, out, at = sum(lengths), [], start
    for n in lengths:
        step = (end - start) * n / total
        out.append((at, at + step))
        at += step
    return out


def _fill_gaps(times: list, tokens: Sequence[str], span: tuple[float, float]) -> None:
    """Words with no time share the gap between the timed words around them (probability 0)."""
    j = 0
    while j < len(times):
        if times[j] is not None:
            j += 1
            continue
        k = j
        while k < len(times) and times[k] is None:
            k += 1
        left = times[j - 1][1] if j > 0 else span[0]
        right = times[k][0] if k < len(times) else span[1]
        for i, (start, end) in zip(range(j, k), _share(left, max(left, right), tokens[j:k])):
            times[i] = (start, end, 0.0)
        j = k


def _forward(tokens: Sequence[str], times: list, span: tuple[float, float]) -> tuple[Word, ...]:
    lo, hi = span
    out, last = [], lo
    for token, (start, end, probability) in zip(tokens, times):
        start = min(max(start, last, lo), hi)
        end = min(max(end, start), hi)
        out.append(Word(token, round(start, 3), round(end, 3), round(probability, 3)))
        last = start
    return tuple(out)
