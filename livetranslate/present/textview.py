"""The live text view on a terminal: each utterance one row, the transcript on the left and
its translation on the right, side by side.

A transcript arrives before its translation. Rows still waiting for their translation stay
in a live area at the bottom of the terminal (with the dimmed partial of the utterance being
spoken and the status line) and move up into the scrollback, complete, as their translations
arrive. A translation of several sentences together (`enhanced`) follows as a highlighted
full-width row, named for readers as `readable.COMBINED_NAME`, only when it adds something to
the sentence translations (see `livetranslate.present.readable`). Rendering is rich's (`Live`): this module only decides what goes where.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from livetranslate.present.readable import COMBINED_NAME, adds_something
from livetranslate.protocol import Event, EventKind

# rows waiting longer than this many newer transcripts go up without their translation
# (it then follows as a row of its own): the live area stays a few lines high
MAX_PENDING = 4


def clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def segments_label(event: Event) -> str:
    """#3, or #3-5 for an enhanced translation of several segments."""
    if event.kind == EventKind.ENHANCED and 0 <= event.first_segment_id != event.segment_id:
        return f"#{event.first_segment_id}-{event.segment_id}"
    return f"#{event.segment_id}"


def end_line(event: Event) -> str:
    """The `end` event: how much audio, or why the stream (or a viewer) ended early."""
    return f"!! {event.error}" if event.error else f"-- end of stream ({clock(event.end_s)} of audio)"


class SentenceTranslations:
    """The recent sentence translations by segment: what a combined translation is compared with."""

    KEEP = 500  # a combined translation covers a few recent sentences, never old ones

    def __init__(self):
        self._by_id: dict[int, Event] = {}

    def note(self, event: Event) -> None:
        if event.kind == EventKind.TRANSLATION:
            self._by_id.pop(event.segment_id, None)
            self._by_id[event.segment_id] = event
            while len(self._by_id) > self.KEEP:
                del self._by_id[next(iter(self._by_id))]

    def worth_showing(self, enhanced: Event) -> bool:
        return adds_something(enhanced, self._by_id)


def combined_label(event: Event) -> str:
    """`in context #3-5`: what a reader sees before a combined translation."""
    return f"{COMBINED_NAME} {segments_label(event)}"


@dataclass
class Row:
    transcript: Event
    translation: Event | None = None
    interim: Event | None = None  # the translation so far, while it is generated


class SideBySideView:
    def __init__(
        self, console: Console | None = None, *, translate: bool = True, status: Callable[[], str] = lambda: ""
    ):
        self.console = console or Console()
        self.translate = translate
        self.status = status
        self.partial: Event | None = None
        self._pending: list[Row] = []
        self._sentences = SentenceTranslations()
        self._lock = threading.Lock()
        self._live = Live(
            console=self.console,
            get_renderable=self._live_area,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    # --- layout ---------------------------------------------------------------------------
    @staticmethod
    def _two_columns(left, right) -> Table:
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        grid.add_row(left, right)
        return grid

    @staticmethod
    def _source(event: Event) -> Text:
        text = Text(f"{clock(event.start_s)} #{event.segment_id} ", style="dim")
        text.append(event.text)
        return text

    @staticmethod
    def _target(event: Event | None, interim: Event | None = None) -> Text:
        if event is None:
            return Text(f"{interim.text} …", style="dim italic") if interim is not None else Text("…", style="dim")
        if event.error:
            return Text(f"(failed: {event.error})", style="red")
        text = Text(event.text, style="green")
        if event.note:  # the server was behind: the small model made it
            text.append(" (small model)", style="dim")
        return text

    def _row(self, row: Row):
        if not self.translate:
            return self._source(row.transcript)
        return self._two_columns(self._source(row.transcript), self._target(row.translation, row.interim))

    def _live_area(self):
        with self._lock:
            parts = [self._row(row) for row in self._pending]
            if self.partial is not None:
                parts.append(Text(f"… #{self.partial.segment_id} {self.partial.text}", style="dim italic"))
        status = self.status()
        if status:
            parts.append(Text(status, style="dim"))
        return Group(*parts)

    # --- events ---------------------------------------------------------------------------
    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        with self._lock:
            rows, self._pending = self._pending, []
        for row in rows:
            self.console.print(self._row(row))
        self._live.stop()

    def note(self, message: str, style: str = "dim") -> None:
        self.console.print(Text(message, style=style))

    def event(self, event: Event) -> None:
        done: list = []
        row: Row | None
        with self._lock:
            if event.kind == EventKind.PARTIAL:
                self.partial = event
            elif event.kind == EventKind.TRANSCRIPT:
                self.partial = None
                row = Row(event)
                if self.translate:
                    self._pending.append(row)
                    while len(self._pending) > MAX_PENDING:
                        done.append(self._row(self._pending.pop(0)))
                else:
                    done.append(self._row(row))
            elif event.kind == EventKind.PARTIAL_TRANSLATION:
                row = next((r for r in self._pending if r.transcript.segment_id == event.segment_id), None)
                if row is not None and row.translation is None:
                    row.interim = event
            elif event.kind == EventKind.TRANSLATION:
                self._sentences.note(event)
                row = next((r for r in self._pending if r.transcript.segment_id == event.segment_id), None)
                if row is None:  # its row went up already: the translation on its own, right
                    done.append(self._two_columns(Text(f"#{event.segment_id}", style="dim"), self._target(event)))
                else:
                    row.translation = event
                while self._pending and self._pending[0].translation is not None:
                    done.append(self._row(self._pending.pop(0)))
            elif event.kind == EventKind.ENHANCED and self._sentences.worth_showing(event):
                text = Text(f"{combined_label(event)} ", style="bold cyan")
                text.append(event.text, style="bold")
                done.append(text)
            elif event.kind == EventKind.ERROR:
                done.append(Text(f"!! {event.text}", style="bold red"))
            elif event.kind == EventKind.END:
                self.partial = None
                done += [self._row(r) for r in self._pending]
                self._pending = []
                done.append(Text(end_line(event), style="red" if event.error else "dim"))
        self._live.refresh()  # the live area without the rows that go up now
        for renderable in done:
            self.console.print(renderable)
