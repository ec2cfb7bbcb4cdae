"""The live text view on a terminal: each utterance one row, transcript left, translation
right, each column wrapped to its width (livetranslate.present.terminal).

Finished text, in normal weight, goes up into the scrollback. Below it, redrawn in place, the
live area holds the rows waiting for their translation, the interim text (dimmed) and the
status line; a row waits until MAX_PENDING newer transcripts came or the area would outgrow
the terminal, then goes up as it is (its translation follows as a row of its own). Each row
starts with its segment id, dimmed (what `livetranslate edit SESSION ID` takes). A translation
in context (`enhanced`) shows only when `readable.adds_something`, marked `IMPROVED_NAME`; a
correction is marked `CORRECTED_NAME`. With speaker labels, a transcript starts with its
speaker (the name given, else the label) in a colour of its own; a name given, or a line that
went up under another label, gets a dim note. Not on a terminal: the finished rows as plain
text, no escape codes, no interim text. Control characters in speech text never reach the terminal.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from livetranslate.present.readable import CORRECTED_NAME, DRAFT_NAME, IMPROVED_NAME, adds_something
from livetranslate.present.speakers import SpeakerBook
from livetranslate.present.terminal import (
    DIM,
    RED,
    SEPARATOR,
    SPEAKER_COLOURS,
    Line,
    Span,
    _cut,
    clean,
    render,
    side_by_side,
    tail,
    text_width,
    words,
    wrap,
)
from livetranslate.protocol import Event, EventKind

MAX_PENDING = 4  # rows waiting behind more newer ones go up without their translation (it follows)
INTERIM_LINES = 2  # interim text in the live area: its newest lines only


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


def speaker_span(who: str, label: str = "") -> Span:
    """`Anna:` in its label's colour (S1, S2 differ; a name keeps its label's colour)."""
    key = label or who
    return (f"{clean(who)}:", SPEAKER_COLOURS[sum(map(ord, key)) % len(SPEAKER_COLOURS)])


def text_spans(event: Event, who: str | None = None, label: str = "") -> list[Span]:
    """An event's text and its quiet mark; a failed translation says so. `who`: the speaker
    shown before it (default: a transcript's own label)."""
    if event.error:
        return [(f"(failed: {clean(event.error)})", RED)]
    quiet = mark(event)
    who = (event.speaker if event.kind == EventKind.TRANSCRIPT else "") if who is None else who
    head = [speaker_span(who, label or event.speaker)] if who else []
    return head + words(event.text) + ([(f"({quiet})", DIM)] if quiet else [])


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
        self._speakers = SpeakerBook()  # each line's speaker label, each label's name

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
            self._speakers.follow(event)
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
        if kind in (EventKind.SPEAKER_NAME, EventKind.SPEAKER_UPDATE):
            return self._speaker(event)
        if kind == EventKind.ERROR:
            return wrap(words(f"!! {event.text}", RED), self._width)
        if kind == EventKind.END:
            self.partial = None
            rows, self._pending = self._pending, []
            ended = wrap(words(end_line(event), RED if event.error else DIM), self._width)
            return [line for row in rows for line in self._row(row)] + ended
        return []  # a summary, or a kind this view does not know yet

    def _speaker(self, event: Event) -> list[Line]:
        """A name given, or a line given to another speaker: the rows still in the live area
        follow; a line gone up already gets a dim note (the scrollback is not redrawn)."""
        if not self._speakers.follow(event) or self.only == "translation":
            return []
        if event.kind == EventKind.SPEAKER_NAME:
            name, colour = speaker_span(event.text, event.speaker)
            return wrap(
                [(f"-- {clean(event.speaker)} is", DIM), (name[:-1], colour), ("from now on", DIM)], self._width
            )
        if any(row.source.segment_id == event.segment_id for row in self._pending):
            return []
        who = self._speakers.who(event.segment_id)
        return wrap([(f"-- #{event.segment_id} was said by", DIM), speaker_span(who, event.speaker)], self._width)

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
        source, book = row.source, self._speakers
        who = book.who(source.segment_id, source.speaker)
        left = [self._id(source)] + text_spans(source, who, book.label(source.segment_id, source.speaker))
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
