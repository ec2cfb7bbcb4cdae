"""SubRip and WebVTT cues from events, written so the file is valid at every moment."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Iterable

import srt

from livetranslate.protocol import Event, EventKind

FORMATS = ("srt", "vtt")


def _timestamp(seconds: float, fmt: str) -> str:
    stamp = srt.timedelta_to_srt_timestamp(datetime.timedelta(seconds=max(0.0, seconds)))
    return stamp.replace(",", ".") if fmt == "vtt" else stamp


def cue(index: int, start_s: float, end_s: float, text: str, fmt: str) -> str:
    end_s = max(end_s, start_s + 0.5)
    text = "\n".join(line for line in text.replace("-->", "->").splitlines() if line.strip()) or "…"
    head = f"{index}\n" if fmt == "srt" else ""
    return f"{head}{_timestamp(start_s, fmt)} --> {_timestamp(end_s, fmt)}\n{text}\n\n"


def header(fmt: str) -> str:
    return "WEBVTT\n\n" if fmt == "vtt" else ""


def render(events: Iterable[Event], fmt: str, kinds: tuple[EventKind, ...]) -> str:
    """A whole subtitle file for these events (exports)."""
    body = [cue(i, e.start_s, e.end_s, e.text, fmt)
            for i, e in enumerate((e for e in events if e.kind in kinds and e.text and not e.error), 1)]
    return header(fmt) + "".join(body)


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
        self._file = open(self.path, "w", encoding="utf-8")
        self._write(header(fmt))

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def add(self, event: Event) -> None:
        if event.kind in self.kinds and event.text and not event.error:
            self._index += 1
            self._write(cue(self._index, event.start_s, event.end_s, event.text, self.fmt))

    def close(self) -> None:
        self._file.close()
