"""Where a stream's events go: the terminal (a live view or one line per event), --out jsonl
and --srt/--vtt subtitles."""

from __future__ import annotations

import shutil
import sys
import threading
from typing import TYPE_CHECKING

import click

from livetranslate.present.textview import (
    SentenceTranslations,
    clock,
    combined_label,
    end_line,
    segments_label,
)
from livetranslate.protocol import INTERIM_KINDS, Event, EventKind

if TYPE_CHECKING:
    from livetranslate.client.resilient import ResilientSession


def format_event(event: Event, fmt: str) -> str:
    if fmt == "jsonl":
        return event.to_json()
    if event.kind == EventKind.END:
        return end_line(event)
    if event.kind == EventKind.ERROR:
        return f"!! {event.text}"
    latency = f"({event.latency_ms / 1000:.1f} s)"
    if event.kind == EventKind.TRANSCRIPT:
        span = f"[{clock(event.start_s)}-{clock(event.end_s)}]"
        return f"{span} #{event.segment_id:<3} {event.language or '??':>3} | {event.text}  {latency}"
    text = f"(failed: {event.error})" if event.error else event.text
    if event.kind == EventKind.ENHANCED:  # several sentences translated together
        return f"{'':>16}{combined_label(event)} {event.language} | {text}  {latency}"
    return f"{'':>16}{segments_label(event):<5}{event.language:>4} | {text}  {latency}"


class Outputs:
    """Everything an event goes to: the terminal, --out jsonl, --srt/--vtt subtitles."""

    def __init__(self, fmt, out, srt_path, vtt_path, subtitle_kind, translate=True, best_language=""):
        from livetranslate.present.subtitles import BestSubtitleWriter, SubtitleWriter

        self.fmt = fmt
        # a terminal gets the side-by-side live view; piped text stays one line per event
        self.view = None
        if fmt == "text" and sys.stdout.isatty():
            from livetranslate.present.textview import SideBySideView

            self.view = SideBySideView(translate=translate, status=self._status_line)
        self.errors = 0
        # the human text shows a combined translation only when it adds something; jsonl has every event
        self.sentences = SentenceTranslations()
        self.jsonl = open(out, "w", encoding="utf-8") if out else None
        kinds = (subtitle_kind,)
        paths = [(p, f) for p, f in ((srt_path, "srt"), (vtt_path, "vtt")) if p]
        self.subtitles: list[SubtitleWriter | BestSubtitleWriter]
        if subtitle_kind == EventKind.TRANSLATION and best_language:  # the best text: rewritten as it improves
            self.subtitles = [BestSubtitleWriter(p, f, best_language) for p, f in paths]
        else:
            self.subtitles = [SubtitleWriter(p, f, kinds) for p, f in paths]

    # --- live status line (text view on a terminal) ---------------------------------------
    session = ""
    partial = ""  # the open utterance's interim text, shown dimmed in place of the status
    state = "connecting"
    latency_s = 0.0
    runner: ResilientSession | None = None  # for the audio level

    @property
    def live_status(self) -> bool:
        """The status line on stderr, for a text view that is not the side-by-side one."""
        return self.view is None and self.fmt == "text" and sys.stderr.isatty()

    degraded = ""  # the note of the latest translation: the server was behind

    def _status_line(self) -> str:
        level = f" · level {self.runner.level:5.0f} dBFS" if self.runner is not None else ""
        behind = " · translations from the small model (behind)" if self.degraded else ""
        return f"● {self.state} · session {self.session}{level} · latency {self.latency_s:.1f} s{behind}"

    def _redraw(self) -> None:
        if self.live_status:
            width = shutil.get_terminal_size().columns - 1
            line = f"\033[2m… {self.partial[-(width - 2) :]}\033[0m" if self.partial else self._status_line()
            sys.stderr.write("\r\033[2K" + line)
            sys.stderr.flush()

    def start_ticker(self) -> None:
        def tick():
            while not self._closed.wait(1.0):
                self._redraw()

        self._closed = threading.Event()
        if self.view is not None:
            self.view.start()
        elif self.live_status:
            threading.Thread(target=tick, daemon=True).start()

    def event(self, event: Event) -> None:
        self.errors += event.kind == EventKind.ERROR or (event.kind == EventKind.END and bool(event.error))
        if event.kind == EventKind.TRANSCRIPT:
            self.latency_s = event.latency_ms / 1000
        if event.kind == EventKind.TRANSLATION and not event.error:
            self.degraded = event.note  # the server says when it translates differently (behind)
        if self.view is not None:
            self.view.event(event)
            self._record(event)
            return
        if event.kind in INTERIM_KINDS:
            self._partial(event)
            return
        if event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION):
            self.partial = ""  # the final text replaces it

        self.sentences.note(event)
        if self.fmt == "text" and event.kind == EventKind.ENHANCED and not self.sentences.worth_showing(event):
            self._record(event)
            return
        if self.live_status:
            sys.stderr.write("\r\033[2K")
        failure = event.kind == EventKind.ERROR or (event.kind == EventKind.END and event.error)
        out = sys.stderr if failure and self.fmt == "text" else sys.stdout
        click.echo(format_event(event, self.fmt), file=out)
        self._redraw()
        self._record(event)

    def _record(self, event: Event) -> None:
        """--out and the subtitle files (partials go to jsonl only)."""
        if self.jsonl:
            self.jsonl.write(event.to_json() + "\n")
            self.jsonl.flush()
        if event.kind not in INTERIM_KINDS:
            for writer in self.subtitles:
                writer.add(event)

    def _partial(self, event: Event) -> None:
        """jsonl carries partials; a terminal shows the latest one dimmed, replaced in place;
        plain text piped elsewhere leaves them out (it cannot replace a line)."""
        self._record(event)
        if self.fmt == "jsonl":
            click.echo(event.to_json())
        elif self.live_status:
            arrow = f"→ {event.language} " if event.kind == EventKind.PARTIAL_TRANSLATION else ""
            self.partial = f"#{event.segment_id} {arrow}{event.text}"
            self._redraw()

    def status(self, message: str) -> None:
        if message.startswith("connected"):
            self.state = message.partition(",")[0]  # which server: with several, it changes
        elif message.startswith(("connection lost", "cannot connect")) or " refused the " in message:
            self.state = "reconnecting"
        if self.view is not None:
            self.view.note(
                f"-- {message}", style="yellow" if message.startswith(("warning", "connection lost")) else "dim"
            )
            return
        if self.live_status:
            sys.stderr.write("\r\033[2K")
        click.echo(f"-- {message}", err=True)
        self._redraw()

    def close(self) -> None:
        if hasattr(self, "_closed"):
            self._closed.set()
        if self.view is not None:
            self.view.stop()
        if self.live_status:
            sys.stderr.write("\n")
        if self.jsonl:
            self.jsonl.close()
        for writer in self.subtitles:
            writer.close()
