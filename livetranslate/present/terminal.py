"""Text for a terminal: spans with their SGR styles, each character's width (wide characters
count double, combining marks none), wrapping into columns, two columns side by side, and text
made harmless (control characters and escapes in speech text never reach the terminal)."""

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Callable
from functools import lru_cache

try:  # the exact width of each character where wcwidth is installed; else unicodedata's
    _wcwidth: Callable[[str], int] | None = importlib.import_module("wcwidth").wcwidth
except ImportError:
    _wcwidth = None

MIN_COLUMN = 20  # a terminal too narrow for two columns of this gets the translation below
SEPARATOR = " │ "

PLAIN, DIM, RED, YELLOW = "", "2", "31", "33"  # SGR parameters of a span of text
SPEAKER_COLOURS = ("1;36", "1;35", "1;32", "1;34", "1;33", "1;91")  # bold cyan, magenta, ... by label
Span = tuple[str, str]  # text, its SGR parameters ("" plain)
Line = list[Span]

# C0 and C1 control characters (ESC, CSI, BEL, ...) and DEL go; tabs, line breaks are spaces, ESC ␛
_HARMLESS: dict[int, str | None] = {c: None for c in (*range(0x20), *range(0x7F, 0xA0))}
_HARMLESS |= {ord(c): " " for c in "\t\n\r\v\f"} | {0x1B: "\u241b"}


def clean(text: str) -> str:
    """Text made harmless for a terminal: only the view's own escapes reach it."""
    return text.translate(_HARMLESS)


@lru_cache(maxsize=8192)
def char_width(char: str) -> int:
    """Columns a character takes: 2 for wide (CJK) ones, 0 for combining marks."""
    if _wcwidth is not None:
        return max(_wcwidth(char), 0)
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def tail(text: str, columns: int) -> str:
    """The end of `text` that fits in `columns`, with … in front when it was cut."""
    if text_width(text) <= columns:
        return text
    return "…" + _cut(text[::-1], columns - 1)[0][::-1]


def words(text: str, style: str = PLAIN) -> list[Span]:
    return [(word, style) for word in clean(text).split()]


def _cut(word: str, columns: int) -> tuple[str, str]:
    """The head of `word` that fits in `columns` (at least one character) and the rest."""
    used = 0
    for i, char in enumerate(word):
        used += char_width(char)
        if used > columns:
            return word[: max(i, 1)], word[max(i, 1) :]
    return word, ""


def wrap(spans: list[Span], columns: int) -> list[Line]:
    """Lines of at most `columns`, broken between words; a word longer than a line (a link,
    CJK text without spaces) fills the line it starts on and is broken where lines end."""
    columns = max(columns, 1)
    lines: list[Line] = []
    line: Line = []
    used = 0
    for word, style in spans:
        size = text_width(word)
        if line and used + 1 + size > columns and (size <= columns or used + 3 > columns):
            lines.append(line)
            line, used = [], 0
        if line:
            line, used = line + [(" ", PLAIN)], used + 1
        while used + size > columns:
            head, word = _cut(word, columns - used)
            lines.append(line + [(head, style)])
            line, used, size = [], 0, text_width(word)
        if word:
            line, used = line + [(word, style)], used + size
    if line:
        lines.append(line)
    return lines


def side_by_side(left: list[Span], right: list[Span], columns: int) -> list[Line]:
    """One row: `left` and `right` each wrapped in a column of its own (the right one behind a
    dim bar); on a terminal too narrow for two columns, `right` below `left` after a dim →."""
    inner = columns - len(SEPARATOR)
    if inner < 2 * MIN_COLUMN:
        return wrap(left, columns) + wrap([("→", DIM)] + right, columns)
    left_width = inner // 2
    lefts, rights = wrap(left, left_width), wrap(right, inner - left_width)
    rows = []
    for i in range(max(len(lefts), len(rights), 1)):
        first = lefts[i] if i < len(lefts) else []
        second = rights[i] if i < len(rights) else []
        bar = SEPARATOR if second else SEPARATOR.rstrip()
        pad = " " * (left_width - text_width("".join(text for text, _ in first)))
        rows.append(first + [(pad, PLAIN), (bar, DIM)] + second)
    return rows


def render(line: Line, color: bool) -> str:
    """A line as text: with its SGR codes (each span closes its own), or plain."""
    merged: Line = []
    for text, style in line:
        if merged and (merged[-1][1] == style or not text.strip()):
            merged[-1] = (merged[-1][0] + text, merged[-1][1])
        else:
            merged.append((text, style))
    return "".join(f"\x1b[{style}m{text}\x1b[0m" if color and style else text for text, style in merged).rstrip(" ")
