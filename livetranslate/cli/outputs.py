"""Where a stream's events go: the terminal (a live view or one line per event), --out jsonl
and --srt/--vtt subtitles."""

from __future__ import annotations

import shlex
import shutil
import sys
import threading
import time
from typing import TYPE_CHECKING

import click

from livetranslate.present.speakers import KINDS as SPEAKER_KINDS
from livetranslate.present.speakers import SpeakerBook
from livetranslate.present.terminal import DIM, YELLOW, clean, tail
from livetranslate.present.textview import SentenceTranslations, clock, end_line, mark, segments_label
from livetranslate.protocol import INTERIM_KINDS, Event, EventKind

if TYPE_CHECKING:
    from livetranslate.client.resilient import ResilientSession


def format_event(event: Event, fmt: str, who: str = "") -> str:
    """One line per event (piped text, or jsonl): `00:04.2 #3 de | Anna: text (mark)  (0.9 s)`,
    with the latency the server measured (none where it measured none); `who`, the speaker of a
    transcript or a translation (the name given, else the label), before its text."""
    if fmt == "jsonl":
        return event.to_json()
    if event.kind == EventKind.END:
        return end_line(event)
    if event.kind == EventKind.ERROR:
        return f"!! {clean(event.text)}"
    if event.kind == EventKind.SPEAKER_NAME:
        return clean(f"-- {event.speaker} is {event.text} from now on")
    if event.kind == EventKind.SPEAKER_UPDATE:
        return clean(f"-- #{event.segment_id} was said by {who or event.speaker}")
    text = f"(failed: {event.error})" if event.error else event.text
    if who and event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION) and not event.error:
        text = f"{who}: {text}"
    quiet = f" ({mark(event)})" if mark(event) else ""
    latency = f"  ({event.latency_ms / 1000:.1f} s)" if event.latency_ms > 0 else ""
    head = f"{clock(event.start_s)} {segments_label(event)} {event.language or '??'}"
    return clean(f"{head} | {text}{quiet}{latency}")


# `watch --only`: the kinds each choice prints (errors and the end always; a correction is
# printed in the column of its language)
ONLY = {
    "translation": {
        EventKind.TRANSLATION,
        EventKind.PARTIAL_TRANSLATION,
        EventKind.ENHANCED,
        EventKind.CORRECTION,
        EventKind.ERROR,
        EventKind.END,
        *SPEAKER_KINDS,
    },
    "transcript": {
        EventKind.TRANSCRIPT,
        EventKind.PARTIAL,
        EventKind.CORRECTION,
        EventKind.ERROR,
        EventKind.END,
        *SPEAKER_KINDS,
    },
}


def duration_words(seconds: float) -> str:
    """3 min 20 s, 45 s, 1 h 5 min."""
    hours, rest = divmod(max(round(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def summary_line(session: str, lines: int, seconds: float) -> str:
    """What `stream` and `watch` say last when Ctrl-C ends them."""
    name = clean(session)
    count = f"{lines} line" + ("" if lines == 1 else "s")
    return f"session {name}: {count} in {duration_words(seconds)}, stored (livetranslate export {shlex.quote(name)})"


class Outputs:
    """Everything an event goes to: the terminal, --out jsonl, --srt/--vtt subtitles. `only`
    (watch --only): one column of the view, "transcript" or "translation"; `language`: the one
    translations are read in, when known."""

    def __init__(
        self, fmt, out, srt_path, vtt_path, subtitle_kind, translate=True, best_language="", only=None, language=""
    ):
        from livetranslate.present.subtitles import BestSubtitleWriter, SubtitleWriter

        self.fmt, self.only, self.language = fmt, only, language
        self.started = time.monotonic()
        self.spoken: dict[int, str] = {}  # segment id -> its transcript's language
        # a terminal gets the side-by-side live view; piped text stays one line per event
        self.view = None
        if fmt == "text" and sys.stdout.isatty():
            from livetranslate.present.textview import SideBySideView

            self.view = SideBySideView(translate=translate, only=only, language=language, status=self._status_line)
        self.errors = 0
        self.speakers = SpeakerBook()  # the speakers piped text shows
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
        # the latest latency the server measured (stored events keep theirs), by kind
        self.latency_s: dict[EventKind, float] = {}
        self.lines: dict[EventKind, set[int]] = {EventKind.TRANSCRIPT: set(), EventKind.TRANSLATION: set()}

    # --- live status line (text view on a terminal) ---------------------------------------
    session = ""
    partial = ""  # the open utterance's interim text, shown dimmed in place of the status
    state = "connecting"
    runner: ResilientSession | None = None  # for the audio level

    @property
    def live_status(self) -> bool:
        """The status line on stderr, for a text view that is not the side-by-side one."""
        return self.view is None and self.fmt == "text" and sys.stderr.isatty()

    degraded = ""  # the note of the latest translation: the server was behind

    def latency(self) -> str:
        """`latency: transcript 0.8 s, translation 1.9 s`: from speech to each, as the server
        measured it for the latest one (a kind not seen yet is left out)."""
        measured = [f"{kind.value} {self.latency_s[kind]:.1f} s" for kind in self.lines if kind in self.latency_s]
        return "latency: " + (", ".join(measured) if measured else "–")

    def _status_line(self) -> str:
        level = f" · level {self.runner.level:5.0f} dBFS" if self.runner is not None else ""
        behind = " · translations from the small model (behind)" if self.degraded else ""
        return f"● {self.state} · session {self.session} · {self.latency()}{level}{behind}"

    def summary(self) -> str:
        """The one line Ctrl-C ends with."""
        shown = self.lines[EventKind.TRANSCRIPT] or self.lines[EventKind.TRANSLATION]
        if self.only == "translation":
            shown = self.lines[EventKind.TRANSLATION]
        return summary_line(self.session, len(shown), time.monotonic() - self.started)

    def _redraw(self) -> None:
        if self.live_status:
            width = shutil.get_terminal_size().columns - 1
            line = f"\033[2m{tail(self.partial, width)}\033[0m" if self.partial else tail(self._status_line(), width)
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

    def _shown(self, event: Event) -> bool:
        """Whether --only leaves `event` in (a correction: in the column of its language)."""
        if self.only is None:
            return True
        if event.kind == EventKind.CORRECTION:
            spoken = self.spoken.get(event.segment_id) or next(reversed(self.spoken.values()), "")
            if event.language == spoken:
                return self.only == "transcript"
            return self.only == "translation" and event.language == (self.language or event.language)
        return event.kind in ONLY[self.only]

    def _count(self, event: Event) -> None:
        if event.kind == EventKind.TRANSCRIPT:
            self.spoken[event.segment_id] = event.language
        elif event.kind == EventKind.TRANSLATION and not self.language:
            self.language = event.language  # the language this viewer reads
        if event.kind in self.lines and not event.error:
            self.lines[event.kind].add(event.segment_id)
            if event.latency_ms > 0:
                self.latency_s[event.kind] = event.latency_ms / 1000
        if event.kind == EventKind.TRANSLATION and not event.error:
            self.degraded = event.note  # the server says when it translates differently (behind)

    busy = interrupted = False  # an event is being shown; Ctrl-C came

    def interrupt(self, *_) -> None:
        """A SIGINT handler: KeyboardInterrupt now, or once the event being shown is shown (a
        terminal left with half a redraw would keep it)."""
        self.interrupted = True
        if not self.busy:
            raise KeyboardInterrupt

    def event(self, event: Event) -> None:
        self.busy = True
        try:
            self._show(event)
        finally:
            self.busy = False
        if self.interrupted:
            raise KeyboardInterrupt

    def _show(self, event: Event) -> None:
        self.speakers.follow(event)
        self.errors += event.kind == EventKind.ERROR or (event.kind == EventKind.END and bool(event.error))
        self._count(event)
        if self.view is not None:  # it shows the column(s) of --only itself
            self.view.event(event)
            self._record(event)
            return
        if not self._shown(event):
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
        click.echo(format_event(event, self.fmt, self.speakers.who(event.segment_id, event.speaker)), file=out)
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
            self.partial = clean(f"… {segments_label(event)} {arrow}{event.text}")
            self._redraw()

    def status(self, message: str) -> None:
        if message.startswith("connected"):
            self.state = message.partition(",")[0]  # which server: with several, it changes
        elif message.startswith(("connection lost", "cannot connect")) or " refused the " in message:
            self.state = "reconnecting"
        if self.view is not None:
            warning = message.startswith(("warning", "connection lost"))
            self.view.note(f"-- {message}", style=YELLOW if warning else DIM)
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
