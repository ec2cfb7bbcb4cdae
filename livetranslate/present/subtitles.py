"""SubRip and WebVTT cues from events, written so the file is valid at every moment. Each
event's text becomes the cues a broadcaster would make of it (livetranslate.present.cues:
2 lines of 42 characters at most, 1 to 7 s, a reading speed a reader keeps up with).

Cue text is made safe for both formats: every Unicode line break becomes a line of its own,
blank lines (which would end the cue) are dropped, `-->` (which would start one) becomes `->`
in SubRip and `&`, `<` and `>` are escaped in WebVTT, and a SubRip line that is only a number
(which would read as the index of a new cue) starts with an invisible WORD JOINER. A WebVTT
cue of a known speaker starts with a voice tag (`<v Anna>`, its name escaped as the text is).
"""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import srt

from livetranslate.present.cues import cues_for
from livetranslate.present.speakers import KINDS as SPEAKER_KINDS
from livetranslate.present.speakers import SpeakerBook
from livetranslate.protocol import Event, EventKind
from livetranslate.words import Word

FORMATS = ("srt", "vtt")
WORD_JOINER = "\u2060"
_ARROW = re.compile(r"--+>")
_INDEX = re.compile(r"-?[0-9]+\.?[0-9]*")  # what SubRip parsers take for a cue index
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _seconds(seconds: float) -> float:
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _timestamp(seconds: float, fmt: str) -> str:
    stamp = srt.timedelta_to_srt_timestamp(datetime.timedelta(seconds=seconds))
    return stamp.replace(",", ".") if fmt == "vtt" else stamp


def cue_text(text: str, fmt: str) -> str:
    """The text as a cue of this format holds it: what its parser gives back (for WebVTT,
    before its character references are unescaped)."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line] or ["…"]
    if fmt == "vtt":
        return "\n".join(line.translate(_VTT_ESCAPES) for line in lines)
    lines = [_ARROW.sub("->", line) for line in lines]
    return "\n".join(WORD_JOINER + line if _INDEX.fullmatch(line) else line for line in lines)


def voice_tag(who: str) -> str:
    """A WebVTT voice span's start for this speaker ("" for none); the name is one line, escaped."""
    name = " ".join(who.split()).translate(_VTT_ESCAPES)
    return f"<v {name}>" if name else ""


def cue(index: int, start_s: float, end_s: float, text: str, fmt: str, who: str = "") -> str:
    start_s = _seconds(start_s)
    end_s = max(_seconds(end_s), start_s + 0.5)
    head = f"{index}\n" if fmt == "srt" else ""
    voice = voice_tag(who) if fmt == "vtt" else ""
    return f"{head}{_timestamp(start_s, fmt)} --> {_timestamp(end_s, fmt)}\n{voice}{cue_text(text, fmt)}\n\n"


def cues(
    index: int, start_s: float, end_s: float, text: str, fmt: str, words: Sequence[Word] = (), who: str = ""
) -> list[str]:
    """One event's text as the cues of this format, numbered from `index` (cues.cues_for;
    `words`, a transcript's, time them; `who`, its speaker, is each WebVTT cue's voice)."""
    made = cues_for(text, start_s, end_s, words)
    return [cue(index + i, c.start_s, c.end_s, c.text, fmt, who) for i, c in enumerate(made)]


def numbered(rows: Iterable[tuple], fmt: str) -> str:
    """A whole file's cues from (start, end, text) rows, numbered through; a fourth element,
    the text's words with their times, times its cues; a fifth, its speaker, is its voice."""
    out: list[str] = []
    for start_s, end_s, text, *more in rows:
        words, who = (more[0] if more else ()), (more[1] if len(more) > 1 else "")
        out += cues(len(out) + 1, start_s, end_s, text, fmt, words, who)
    return "".join(out)


def header(fmt: str) -> str:
    return "WEBVTT\n\n" if fmt == "vtt" else ""


def render(events: Iterable[Event], fmt: str, kinds: tuple[EventKind, ...]) -> str:
    """A whole subtitle file for these events (exports)."""
    rows = ((e.start_s, e.end_s, e.text, e.words) for e in events if e.kind in kinds and e.text and not e.error)
    return header(fmt) + numbered(rows, fmt)


def format_for(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: subtitle files end in .srt or .vtt")
    return fmt


class SubtitleWriter:
    """Appends one cue per event of the chosen kinds and flushes it to disk at once, so a
    crash (even kill -9) leaves a file that parses."""

    def __init__(self, path: Path, fmt: str, kinds: tuple[EventKind, ...]):
        if fmt not in FORMATS:
            raise ValueError(f"unknown subtitle format {fmt!r}")
        self.path, self.fmt, self.kinds = Path(path), fmt, kinds
        self._index = 0
        self._speakers = SpeakerBook()
        self._file = open(self.path, "w", encoding="utf-8")
        self._write(header(fmt))

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def add(self, event: Event) -> None:
        self._speakers.follow(event)  # a name given now shows on the cues from now on
        if event.kind in self.kinds and event.text and not event.error:
            who = self._speakers.who(event.segment_id, event.speaker)
            text = f"{who}: {event.text}" if who and self.fmt == "srt" else event.text
            made = cues(self._index + 1, event.start_s, event.end_s, text, self.fmt, event.words, who)
            self._index += len(made)
            self._write("".join(made))

    def close(self) -> None:
        self._file.close()


class BestSubtitleWriter:
    """Subtitles of the translations as a reader ends up with them: a sentence's cue is
    replaced by the enhanced translation of the window that covers it when that comes
    (livetranslate.present.export, `best`). The file is rewritten whole and moved into place at each
    change, so it is valid at every moment."""

    KINDS = (EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.ENHANCED, *SPEAKER_KINDS)

    def __init__(self, path: Path, fmt: str, language: str):
        if fmt not in FORMATS:
            raise ValueError(f"unknown subtitle format {fmt!r}")
        self.path, self.fmt, self.language = Path(path), fmt, language
        self._events: list[Event] = []
        self._written: str | None = None
        self._write()

    def _write(self) -> None:
        from livetranslate.present.export import lines

        rows = lines(self._events, "target", self.language, "best", voice=self.fmt == "vtt")
        text = header(self.fmt) + numbered(rows, self.fmt)
        if text == self._written:
            return
        part = self.path.with_name(self.path.name + ".part")
        with open(part, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, self.path)
        self._written = text

    def add(self, event: Event) -> None:
        if event.kind in self.KINDS and (event.text or event.kind in SPEAKER_KINDS) and not event.error:
            self._events.append(event)
            self._write()

    def close(self) -> None:
        pass
