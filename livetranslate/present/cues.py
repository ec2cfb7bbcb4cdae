"""Subtitle cues as broadcasters make them, from one event's text and time.

A cue has at most 2 lines of at most 42 characters and stays on screen from 1 to 7 seconds.
It reads at no more than 20 characters a second where the speech leaves the time, and never
above 25: a sentence spoken faster than that runs on past its end. A long sentence becomes
several cues, timed by their words' times where those are known (a transcript's), else in
proportion to their length within the sentence's time. Cues and
lines break at the best place in reach: after a sentence's or a clause's punctuation, then
after a comma or a dash, then before a word that starts a phrase (and, but, that, und, aber,
dass ...), never inside a word. A word longer than a whole line is the one exception: it is
cut, since no line could hold it. Characters are counted as Unicode code points.
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

from livetranslate.words import Word

MAX_LINE = 42  # characters a line holds
MAX_LINES = 2
MIN_S, MAX_S = 1.0, 7.0  # how long a cue stays
READ_CPS, MAX_CPS = 20.0, 25.0  # characters a second: comfortable, and the most ever
EMPTY = "…"  # the text of a cue whose event said nothing visible

_STRONG = re.compile(r"[.!?…:;][\"'»«“”‘’)\]]*$")  # a sentence or a clause ends here
_WEAK = re.compile(r"[,–—][\"'»«“”‘’)\]]*$")  # a comma or a dash
# words that start a phrase: a break before them reads well (German and English)
PHRASE_STARTS = frozenset(
    "and but or so because that which who when while if then although after before until "
    "und aber oder denn weil dass wenn als ob obwohl damit bevor nachdem bis sondern doch "
    "wo wie".split()
)
# articles and prepositions: they belong with the word after them
BINDS = frozenset(
    "the a an of to in on at for with by from into about "
    "der die das den dem des ein eine einen einem einer eines für mit von zu zum zur im am um "
    "bei nach auf aus über unter vor hinter zwischen durch gegen ohne".split()
)


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def characters(self) -> int:
        """What a reader reads: its lines as one, with a space between them."""
        return len(" ".join(self.lines))


def words_of(text: str) -> tuple[list[str], set[int]]:
    """The words of a text (any whitespace separates them; a word longer than a line is cut
    into pieces a line can hold), and the words its own line breaks come after: the best
    breaks of all (an export of both languages puts each on a line of its own)."""
    out: list[str] = []
    ends: set[int] = set()
    for line in text.splitlines():
        for word in line.split():
            out += [word[i : i + MAX_LINE] for i in range(0, len(word), MAX_LINE)]
        if out:
            ends.add(len(out) - 1)
    return out, ends


def _bare(word: str) -> str:
    return word.lower().strip("\"'»«“”‘’()[]")


def _score(words: list[str], after: int, ends: Set[int]) -> int:
    """How good a break after words[after] is (before words[after + 1]): the text's own line
    breaks, then punctuation, then before a phrase; never after an article, a preposition or
    a conjunction."""
    if after in ends:
        return 4
    if _STRONG.search(words[after]):
        return 3
    if _WEAK.search(words[after]):
        return 2
    if _bare(words[after]) in BINDS or _bare(words[after]) in PHRASE_STARTS:
        return -1  # "the | server", "and | so": the word belongs with the next
    if after + 1 < len(words) and _bare(words[after + 1]) in PHRASE_STARTS:
        return 1
    return 0


def layout(words: list[str], ends: Set[int] = frozenset(), offset: int = 0) -> tuple[str, ...] | None:
    """The words as one or two lines that fit (the best break, then the most even lines), or
    None when they cannot fit."""
    whole = " ".join(words)
    if len(whole) <= MAX_LINE and not any(offset + i in ends for i in range(len(words) - 1)):
        return (whole,)
    best: tuple[tuple[int, int], tuple[str, str]] | None = None
    for m in range(1, len(words)):
        first, second = " ".join(words[:m]), " ".join(words[m:])
        if len(first) <= MAX_LINE and len(second) <= MAX_LINE:
            key = (_score(words, m - 1, {e - offset for e in ends}), -abs(len(first) - len(second)))
            if best is None or key > best[0]:
                best = (key, (first, second))
    return best[1] if best else None


def chunks(words: list[str], ends: Set[int] = frozenset()) -> list[tuple[str, ...]]:
    """The words as the lines of consecutive cues: each cue as full as its best break allows."""
    out: list[tuple[str, ...]] = []
    pos = 0
    while pos < len(words):
        fit = pos + 1  # one word always fits (words_of cut the long ones)
        while fit < len(words) and layout(words[pos : fit + 1], ends, pos) is not None:
            fit += 1
        end = fit
        if fit < len(words):  # not the last cue: end it at the best break in reach
            room = len(" ".join(words[pos:fit]))

            def key(k: int) -> tuple[int, int]:
                return (_score(words, k - 1, ends), k)

            # breaks that leave a cue of at least a third of what fits
            candidates = [k for k in range(pos + 1, fit + 1) if len(" ".join(words[pos:k])) * 3 >= room]
            end = max(candidates, key=key)
        lines = layout(words[pos:end], ends, pos)
        assert lines is not None  # fits: it is at most what fit
        out.append(lines)
        pos = end
    return out


def cues_for(text: str, start_s: float, end_s: float, words: Sequence[Word] = ()) -> list[Cue]:
    """The cues of one event: `text` said from `start_s` to `end_s` (seconds); `words`, one
    per word of the text with its times, place each cue where its words were said."""
    # One piece: the shares, the reading-speed limits and the placement depend on each other
    # across all the cues of the text (a cue that must stay longer pushes the next one on).
    start_s = start_s if start_s == start_s and start_s > 0 else 0.0  # NaN or negative: 0
    end_s = end_s if end_s == end_s and end_s > start_s else start_s
    if end_s - start_s > 1e6:  # no clock: a time this far off says nothing
        end_s = start_s
    split, ends = words_of(text)
    parts = chunks(split, ends) or [(EMPTY,)]
    sizes = [len(" ".join(lines)) for lines in parts]
    span, total = end_s - start_s, sum(sizes)
    share = [span * size / total for size in sizes]  # in proportion to their length
    starts = [start_s + sum(share[:k]) for k in range(len(parts))]
    if words and len(words) == len(split) and split:  # each cue from its first word's start to its last's end
        first = 0
        for k, lines in enumerate(parts):
            last = first + sum(len(line.split()) for line in lines) - 1
            begin = min(max(words[first].start_s, start_s), end_s)
            starts[k], share[k] = begin, max(0.0, min(words[last].end_s, end_s) - begin)
            first = last + 1
    hard = [max(MIN_S, size / MAX_CPS, s) for size, s in zip(sizes, share)]
    easy = [max(MIN_S, size / READ_CPS, s) for size, s in zip(sizes, share)]
    # comfortable reading where the sentence's time allows it, never faster than MAX_CPS
    if sum(easy) > span and sum(easy) > sum(hard):
        give = max(0.0, min(1.0, (span - sum(hard)) / (sum(easy) - sum(hard))))
        easy = [h + (e - h) * give for h, e in zip(hard, easy)]
    out: list[Cue] = []
    previous_end = start_s
    for lines, at, length in zip(parts, starts, easy):
        begin = max(at, previous_end)
        previous_end = begin + min(MAX_S, length)
        out.append(Cue(begin, previous_end, lines))
    return out
