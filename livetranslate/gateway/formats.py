"""A stream's events as OpenAI answers them: `json`, `text`, `srt`, `vtt`, `verbose_json`, and
the server-sent events of `stream=true`.

A transcription's text is its transcripts in order, as `livetranslate stream` prints them; a
translation's is each sentence's best translation, as `livetranslate export --text best`
writes it (the in-context translation where one covers the sentence, else the sentence's
own). A transcription's `verbose_json` has `words` when asked (`timestamp_granularities[]=word`):
each transcript's words with the times the server gave them; a translation has none."""

from __future__ import annotations

import collections
import json
import math
from dataclasses import dataclass

from livetranslate.languages import NAMES
from livetranslate.present.export import lines
from livetranslate.present.readable import covered_ids
from livetranslate.present.subtitles import header, numbered
from livetranslate.protocol import Event, EventKind
from livetranslate.words import Word

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",  # what OpenAI answers subtitles with
    "vtt": "text/plain; charset=utf-8",
}
TASKS = ("transcribe", "translate")

Row = tuple[float, float, str]


@dataclass(frozen=True)
class Result:
    """What one request made: its rows (start, end, text), in order."""

    task: str  # transcribe or translate
    language: str  # the code of the text's language
    duration_s: float  # the audio's
    rows: tuple[Row, ...]
    failed: int = 0  # sentences whose translation failed and that no in-context one covers
    words: tuple[tuple[Word, ...], ...] = ()  # a transcription's: each row's words with their times

    @property
    def text(self) -> str:
        return " ".join(text.strip() for _, _, text in self.rows if text.strip())

    def timed_rows(self) -> list[tuple]:
        """The rows, each with its words where there are some (subtitles cut at them)."""
        return [(*row, words) for row, words in zip(self.rows, self.words)] if self.words else list(self.rows)


def spoken_language(events: list[Event], asked: str) -> str:
    """The language asked for, or (`auto`) the one Whisper heard most."""
    if asked != "auto":
        return asked
    heard = collections.Counter(e.language for e in events if e.kind == EventKind.TRANSCRIPT and e.language)
    return heard.most_common(1)[0][0] if heard else ""


def result(events: list[Event], task: str, language: str, duration_s: float) -> Result:
    """`language`: for a transcription the spoken one (`auto`: the one heard), for a
    translation the one translated into."""
    if task == "transcribe":
        rows = lines(events, "source", "")
        said = {(e.start_s, e.text): e.words for e in events if e.kind == EventKind.TRANSCRIPT}
        words = tuple(said.get((start, text), ()) for start, _, text in rows)  # a corrected row has none
        return Result(task, spoken_language(events, language), duration_s, tuple(rows), words=words)
    rows = lines(events, "target", language, "best")
    covered = {
        s
        for e in events
        if e.kind == EventKind.ENHANCED and not e.error and e.text.strip() and e.language == language
        for s in covered_ids(e)
    }
    failed = sum(
        1
        for e in events
        if e.kind == EventKind.TRANSLATION and e.error and e.language == language and e.segment_id not in covered
    )
    return Result(task, language, duration_s, tuple(rows), failed)


def language_name(code: str) -> str:
    """What OpenAI writes: the language's English name in lower case (`german`)."""
    return NAMES.get(code, code).lower()


def segments(rows: tuple[Row, ...]) -> list[dict]:
    """OpenAI's segment objects. Whisper's own figures per segment (log probability,
    compression, no-speech probability) do not reach clients: they are null, not made up."""
    return [
        {
            "id": i,
            "seek": int(round(start * 100)),  # Whisper's frames of 10 ms
            "start": round(start, 3),
            "end": round(end, 3),
            "text": text,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": None,
            "compression_ratio": None,
            "no_speech_prob": None,
        }
        for i, (start, end, text) in enumerate(rows)
    ]


def words(made: Result) -> list[dict]:
    """OpenAI's word objects: the word, its start and end (seconds from the audio's start)."""
    return [{"word": w.word, "start": round(w.start_s, 3), "end": round(w.end_s, 3)} for row in made.words for w in row]


def usage(made: Result) -> dict:
    return {"type": "duration", "seconds": math.ceil(made.duration_s)}


def render(made: Result, fmt: str, with_words: bool = False) -> tuple[str, str]:
    """The body and its media type; `with_words`: verbose_json has `words`."""
    if fmt == "json":
        return _json({"text": made.text, "usage": usage(made)}), MEDIA_TYPES[fmt]
    if fmt == "text":
        return made.text + "\n", MEDIA_TYPES[fmt]
    if fmt in ("srt", "vtt"):
        return header(fmt) + numbered(made.timed_rows(), fmt), MEDIA_TYPES[fmt]
    if fmt == "verbose_json":
        body = {
            "task": made.task,
            "language": language_name(made.language),
            "duration": round(made.duration_s, 3),
            "text": made.text,
            "segments": segments(made.rows),
            "usage": usage(made),
        }
        if with_words and made.task == "transcribe":
            body["words"] = words(made)
        return _json(body), MEDIA_TYPES[fmt]
    raise ValueError(f"unknown response format {fmt!r}")


def _json(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False)


# --- stream=true: server-sent events -------------------------------------------------------
def delta(event: Event, task: str, language: str) -> str | None:
    """The text an event adds to the answer as it streams: a transcript, or a sentence's
    translation (the done event's text may then differ: in-context translations replace
    sentences' own when they come)."""
    if event.error or not event.text.strip():
        return None
    if task == "transcribe" and event.kind == EventKind.TRANSCRIPT:
        return event.text.strip()
    if task == "translate" and event.kind == EventKind.TRANSLATION and event.language == language:
        return event.text.strip()
    return None


def sse(data: dict) -> bytes:
    return f"data: {_json(data)}\n\n".encode()


def sse_delta(text: str, first: bool) -> bytes:
    return sse({"type": "transcript.text.delta", "delta": text if first else " " + text})


def sse_done(made: Result) -> bytes:
    return sse({"type": "transcript.text.done", "text": made.text})


def sse_error(body: dict) -> bytes:
    """An error after the answer began: the OpenAI clients raise it."""
    return sse(body)
