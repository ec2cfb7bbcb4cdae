"""The live text view on a terminal: each utterance one row, transcript left, translation
right, each column wrapped to its width (wide characters count double).

Finished text, in normal weight, goes up into the scrollback. Below it, redrawn in place, the
live area holds the rows waiting for their translation, the interim text (dimmed) and the
status line; a row waits until MAX_PENDING newer transcripts came or the area would outgrow
the terminal, then goes up as it is (its translation follows as a row of its own). Each row
starts with its segment id, dimmed (what `livetranslate edit SESSION ID` takes). A translation
in context (`enhanced`) shows only when `readable.adds_something`, marked `IMPROVED_NAME`; a
correction is marked `CORRECTED_NAME`. Not on a terminal: the finished rows as plain text, no
escape codes, no interim text. Control characters in speech text never reach the terminal.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TextIO

from livetranslate.present.readable import CORRECTED_NAME, DRAFT_NAME, IMPROVED_NAME, adds_something
from livetranslate.protocol import Event, EventKind

try:  # the exact width of each character where wcwidth is installed; else unicodedata's
    _wcwidth: Callable[[str], int] | None = importlib.import_module("wcwidth").wcwidth
except ImportError:
    _wcwidth = None

MAX_PENDING = 4  # rows waiting behind more newer ones go up without their translation (it follows)
MIN_COLUMN = 20  # a terminal too narrow for two columns of this gets the translation below
SEPARATOR = " │ "
INTERIM_LINES = 2  # interim text in the live area: its newest lines only

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


def clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def segments_label(event: Event) -> str:
    """#3, or #3-5 for an enhanced translation of several segments."""
    if event.kind == EventKind.ENHANCED and 0 <= event.first_segment_id != event.segment_id:
        return f"#{event.first_segment_id}-{event.segment_id}"
    return f"#{event.segment_id}"


def mark(event: Event) -> str:
    """The quiet mark beside a line that is not the first plain text of its segment."""
    quiet = {EventKind.CORRECTION: CORRECTED_NAME, EventKind.ENHANCED: IMPROVED_NAME}.get(event.kind, "")
    return quiet or (DRAFT_NAME if event.kind == EventKind.TRANSLATION and event.note and not event.error else "")


def end_line(event: Event) -> str:
    """The `end` event: how much audio, or why the stream (or a viewer) ended early."""
    return f"!! {clean(event.error)}" if event.error else f"-- end of stream ({clock(event.end_s)} of audio)"


class SentenceTranslations(dict[int, Event]):
    """The recent sentence translations by segment: what a combined translation is compared with."""

    KEEP = 500  # a combined translation covers a few recent sentences, never old ones

    def note(self, event: Event) -> None:
        if event.kind == EventKind.TRANSLATION:
            self.pop(event.segment_id, None)
            self[event.segment_id] = event
            if len(self) > self.KEEP:
                del self[next(iter(self))]

    def worth_showing(self, enhanced: Event) -> bool:
        return adds_something(enhanced, self)


@dataclass
class Row:
    source: Event  # a transcript, or a correction in the spoken language
    translation: Event | None = None
    interim: Event | None = None  # the translation so far, while it is generated


def text_spans(event: Event) -> list[Span]:
    """An event's text and its quiet mark; a failed translation says so."""
    if event.error:
        return [(f"(failed: {clean(event.error)})", RED)]
    quiet, who = mark(event), clean(event.speaker) if event.kind == EventKind.TRANSCRIPT else ""
    label = [(f"{who}:", SPEAKER_COLOURS[sum(map(ord, who)) % len(SPEAKER_COLOURS)])] if who else []  # S1, S2 differ
    return label + words(event.text) + ([(f"({quiet})", DIM)] if quiet else [])


class SideBySideView:
    """`only`: None (both columns), "transcript" or "translation" (one column). `language`: the
    one translations are read in, when known (else the first translation's)."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        translate: bool = True,
        only: str | None = None,
        language: str = "",
        status: Callable[[], str] = lambda: "",
        live: bool | None = None,
        size: Callable[[], tuple[int, int]] | None = None,
    ):
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.only = only or (None if translate else "transcript")
        self.language, self.status, self._size = language, status, size or self._terminal_size
        self.partial: Event | None = None  # the open utterance's interim text (its transcript or translation)
        self._pending: list[Row] = []
        self._spoken: dict[int, str] = {}  # segment id -> its transcript's language
        self._sentences = SentenceTranslations()
        self._lock = threading.RLock()  # an event, a redraw, and Ctrl-C in the middle of either
        self._width = 80  # columns
        self._closed = threading.Event()
        self._shown: list[str] = []  # the live area on the screen now

    def _terminal_size(self) -> tuple[int, int]:
        """The size of the terminal written to (a stale $COLUMNS a parent left does not count)."""
        try:
            return os.get_terminal_size(self.out.fileno())
        except (AttributeError, OSError, ValueError):
            return shutil.get_terminal_size()

    def event(self, event: Event) -> None:
        with self._lock:
            self._measure()
            self._draw(self._take(event))

    def note(self, message: str, style: str = DIM) -> None:
        with self._lock:
            self._measure()
            self._draw(wrap(words(message, style), self._width))

    def _measure(self) -> None:
        self._width = max(self._size()[0], 1)

    def _take(self, event: Event) -> list[Line]:
        """What goes up into the scrollback now; the rest waits in the live area."""
        kind = event.kind
        if kind in (EventKind.PARTIAL, EventKind.PARTIAL_TRANSLATION):
            return self._interim(event)
        if kind == EventKind.TRANSCRIPT:
            self._spoken[event.segment_id] = event.language
            if self.partial is not None and self.partial.kind == EventKind.PARTIAL:
                self.partial = None
            return self._source(event)
        if kind == EventKind.CORRECTION:
            spoken = self._spoken.get(event.segment_id) or next(reversed(self._spoken.values()), "")
            if event.language == spoken:
                return self._source(event)
            return self._translation(event) if event.language == (self.language or event.language) else []
        if kind == EventKind.TRANSLATION:
            self.language = self.language or event.language
            self._sentences.note(event)
            if self.partial is not None and self.partial.segment_id == event.segment_id:
                self.partial = None
            return self._translation(event)
        if kind == EventKind.ENHANCED:
            return self._alone(event) if self.only != "transcript" and self._sentences.worth_showing(event) else []
        if kind == EventKind.ERROR:
            return wrap(words(f"!! {event.text}", RED), self._width)
        if kind == EventKind.END:
            self.partial = None
            rows, self._pending = self._pending, []
            ended = wrap(words(end_line(event), RED if event.error else DIM), self._width)
            return [line for row in rows for line in self._row(row)] + ended
        return []  # a summary, or a kind this view does not know yet

    def _interim(self, event: Event) -> list[Line]:
        translated = event.kind == EventKind.PARTIAL_TRANSLATION
        if self.only == ("transcript" if translated else "translation"):
            return []
        row = self._waiting(event.segment_id, EventKind.TRANSCRIPT)
        if translated and row is not None:
            row.interim = event
        else:
            self.partial = event
        return []

    def _source(self, event: Event) -> list[Line]:
        if self.only == "transcript":
            return self._row(Row(event))
        if self.only == "translation":
            return []
        self._pending.append(Row(event))
        overflow, self._pending = self._pending[:-MAX_PENDING], self._pending[-MAX_PENDING:]
        return [line for row in overflow for line in self._row(row)]

    def _translation(self, event: Event) -> list[Line]:
        """A translation, or a correction translated: into its row, or a row of its own."""
        if self.only == "transcript":
            return []
        row = self._waiting(
            event.segment_id, event.kind if event.kind == EventKind.CORRECTION else EventKind.TRANSCRIPT
        )
        if row is None:  # its row went up already (or there is none): on its own, on the right
            return self._alone(event)
        row.translation, row.interim = event, None
        done = []
        while self._pending and self._pending[0].translation is not None:
            done += self._row(self._pending.pop(0))
        return done

    def _waiting(self, segment_id: int, source: EventKind) -> Row | None:
        """The row of `segment_id` (from a transcript, or a correction) that waits for its translation."""
        rows = (r for r in self._pending if r.source.segment_id == segment_id and r.source.kind == source)
        return next((r for r in rows if r.translation is None), None)

    @staticmethod
    def _id(event: Event) -> Span:
        return (segments_label(event), DIM)

    def _alone(self, event: Event) -> list[Line]:
        if self.only == "translation":
            return wrap([self._id(event)] + text_spans(event), self._width)
        return side_by_side([self._id(event)], text_spans(event), self._width)

    def _row(self, row: Row, live: bool = False) -> list[Line]:
        """A row; in the live area with the translation so far (dimmed), which never goes up."""
        left = [self._id(row.source)] + text_spans(row.source)
        if self.only is not None:
            return wrap(left, self._width)
        if row.translation is not None:
            right = text_spans(row.translation)
        elif live and row.interim is not None:
            column = (self._width - len(SEPARATOR)) // 2
            right = words(tail(clean(row.interim.text), INTERIM_LINES * column - 4), DIM) + [("…", DIM)]
        else:
            right = [("…", DIM)]
        return side_by_side(left, right, self._width)

    def _live_lines(self, done: list[Line]) -> list[Line]:
        """The live area (moving rows that no longer fit in it into `done`)."""
        room = max(self._size()[1] - 2, 3)
        extra: list[Line] = []
        if self.partial is not None:
            text = tail(clean(self.partial.text), INTERIM_LINES * self._width - 10)
            extra += wrap([("…", DIM), self._id(self.partial)] + words(text, DIM), self._width)
        status = clean(self.status())
        if status:
            extra.append(
                [(status if text_width(status) <= self._width else _cut(status, self._width - 1)[0] + "…", DIM)]
            )
        while True:
            rows = [self._row(row, live=True) for row in self._pending]
            if not rows or sum(map(len, rows)) + len(extra) <= room:
                break
            done += self._row(self._pending.pop(0))
        return ([line for row in rows for line in row] + extra)[-room:]

    def _draw(self, done: list[Line]) -> None:
        if not self.live:  # plain text: only what is finished
            self.out.write("".join(render(line, False) + "\n" for line in done))
            self.out.flush()
            return
        live = [] if self._closed.is_set() else self._live_lines(done)
        shown = [render(line, True) for line in live]
        if not done and shown == self._shown:
            return  # nothing new: the screen stays as it is
        # up to the live area, then line by line (no erase-to-end-of-screen: tmux would scroll
        # it into the scrollback) what goes up and the live area; old lines left are blanked
        old, self._shown = len(self._shown), shown
        rows = [render(line, True) for line in done] + shown
        stale = max(old - len(rows), 0)
        parts = [f"\x1b[{old}A" if old else ""] + [f"\r\x1b[2K{row}\n" for row in rows]
        parts += ["\r\x1b[2K\n" * stale, f"\x1b[{stale}A" if stale else ""]
        self.out.write("".join(parts))
        self.out.flush()

    def refresh(self) -> None:
        with self._lock:
            self._measure()
            self._draw([])

    def start(self) -> None:
        """Redraws the live area (the status line: audio level, connection) twice a second."""

        def tick() -> None:
            while not self._closed.wait(0.5):
                self.refresh()

        if self.live:
            threading.Thread(target=tick, name="textview", daemon=True).start()

    def stop(self) -> None:
        """The rows still waiting go up as they are; the live area goes."""
        with self._lock:
            self._closed.set()
            self._measure()
            rows, self._pending = self._pending, []
            self._draw([line for row in rows for line in self._row(row)])
