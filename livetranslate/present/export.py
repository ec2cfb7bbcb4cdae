"""Exports of a stored session: txt, srt, vtt, jsonl; the source, the speaker's target
language, both, or any other language the session's translations were stored in (the
languages its viewers asked for).

Which translation: `best` (the default) is what a reader ends up with, each sentence's
translation replaced by the enhanced translation of the window that covers it (one line
for the window's sentences); `first` is each sentence's first complete translation, as it
was shown first.

An organiser's corrections (`livetranslate edit`) come first with `best`: the corrected
transcript replaces the original, and its translation replaces the sentence's translation
and any enhanced window that covered it (that window's other sentences get their own rows).
`first` shows what was said and shown first, before any correction. A summary (`livetranslate
summary`) goes on top when asked for: a block of text in txt, a NOTE in vtt (srt has no place
for one). With speaker labels, each line says who spoke (livetranslate.present.speakers: the name
given, else the label): "Anna: " in txt and srt, a voice tag `<v Anna>` in vtt, `speaker` in
jsonl (the log as stored: its `speaker_update` and `speaker_name` events say the rest)."""

from __future__ import annotations

from livetranslate.present import readable
from livetranslate.present.speakers import SpeakerBook
from livetranslate.present.subtitles import header, numbered
from livetranslate.protocol import WHISPER_LANGUAGES, Event, EventKind

FORMATS = ("txt", "srt", "vtt", "jsonl")
LANGS = ("source", "target", "both")  # or a language code: that language's translations
TEXTS = ("best", "first")


def languages(events: list[Event], target_language: str = "") -> list[str]:
    """The languages a session's translations (or summaries) were stored in, the speaker's target first."""
    kinds = (EventKind.TRANSLATION, EventKind.SUMMARY)  # a summary in a language nobody read live
    found = dict.fromkeys(e.language for e in events if e.kind in kinds and e.language)
    if target_language in found:
        return [target_language] + [lang for lang in found if lang != target_language]
    return list(found)


def _translation_language(events: list[Event], lang: str, target_language: str) -> str:
    """The language whose translations `lang` asks for ("" for the source only)."""
    if lang == "source":
        return ""
    stored = languages(events, target_language)
    if lang in ("target", "both"):  # without a named target: the first translated, the speaker's
        return target_language or (stored[0] if stored else "")
    if lang not in stored:
        have = ", ".join(stored) or "none"
        raise ValueError(f"no translations into {lang!r} are stored with this session (it has: {have})")
    return lang


def _windows(
    events: list[Event], language: str, transcripts: dict[int, Event], corrected: set[int]
) -> dict[int, tuple[list[int], str]]:
    """Segment id -> (the segments of the enhanced window covering it, its text). Windows do
    not overlap; should one overlap an earlier one, the later replaces it whole. A window over
    a `corrected` segment is dropped: its text follows what was said before the correction."""
    kept: list[tuple[list[int], str]] = []
    for e in events:
        if e.kind == EventKind.ENHANCED and not e.error and e.text.strip() and e.language == language:
            covered = [s for s in readable.covered_ids(e) if s in transcripts]
            if covered:
                kept = [w for w in kept if not set(w[0]) & set(covered)] + [(covered, e.text.strip())]
    return {s: window for window in kept if not set(window[0]) & corrected for s in window[0]}


def corrections(
    events: list[Event], transcripts: dict[int, Event]
) -> tuple[dict[int, str], dict[tuple[int, str], str]]:
    """The latest correction of each segment: (segment -> corrected transcript, (segment,
    language) -> its translation). A correction in a segment's spoken language corrects the
    transcript; in any other language it is that correction translated."""
    spoken: dict[int, str] = {}
    translated: dict[tuple[int, str], str] = {}
    for e in events:
        if e.kind != EventKind.CORRECTION or e.error or not e.text.strip() or e.segment_id not in transcripts:
            continue
        if e.language in ("", transcripts[e.segment_id].language):
            spoken[e.segment_id] = e.text.strip()
        else:
            translated[(e.segment_id, e.language)] = e.text.strip()
    return spoken, translated


def summary(events: list[Event], language: str) -> str:
    """The latest summary in `language` ("" when none was made)."""
    made = [e.text for e in events if e.kind == EventKind.SUMMARY and not e.error and e.language == language]
    return made[-1].strip() if made else ""


def lines(events: list[Event], lang: str, language: str, text: str = "best", voice: bool = False) -> list[tuple]:
    """(start, end, text) per segment, in segment order; with `best`, one row per enhanced
    window instead of its sentences' rows. With speaker labels, a row of one speaker starts with
    "Name: " (the name given, else the label); with `voice` it does not, and the row has two more
    elements instead: no words, and the name (WebVTT's voice tag)."""
    transcripts = {e.segment_id: e for e in events if e.kind == EventKind.TRANSCRIPT}
    translations = {
        e.segment_id: e.text
        for e in events
        if e.kind == EventKind.TRANSLATION and not e.error and e.text and e.language == language
    }
    said = {s: e.text for s, e in transcripts.items()}
    book = SpeakerBook.of(events)
    corrected: set[int] = set()
    if text == "best":
        spoken, translated = corrections(events, transcripts)
        said.update(spoken)
        corrected = set(spoken) | {s for s, lang_ in translated if lang_ == language}
        translations.update({s: t for (s, lang_), t in translated.items() if lang_ == language})
    windows = _windows(events, language, transcripts, corrected) if text == "best" and lang != "source" else {}
    rows = []
    for seg_id in sorted(transcripts):
        segments, target = [seg_id], translations.get(seg_id, "")
        if seg_id in windows:
            segments, target = windows[seg_id]
            if seg_id != segments[0]:
                continue  # on the window's row
        source = " ".join(said[s] for s in segments)
        who = {book.who(s, transcripts[s].speaker) for s in segments}
        speaker = who.pop() if len(who) == 1 else ""  # one speaker's row, with speaker labels on
        name = f"{speaker}: " if speaker and not voice else ""
        if lang == "source":
            line = name + source
        elif lang == "both":
            line = "\n".join(x for x in (name + source, target) if x)
        else:
            line = name + target if target else ""
        if line:
            row = (transcripts[segments[0]].start_s, transcripts[segments[-1]].end_s, line)
            rows.append(row + ((), speaker) if voice else row)
    return rows


def export(
    events: list[Event],
    fmt: str,
    lang: str = "both",
    target_language: str = "",
    text: str = "best",
    with_summary: bool = False,
) -> str:
    """`lang`: source, target (the speaker's `target_language`; without it, the language of
    the first translation), both, or a language code the session has translations in.
    `text`: best or first (module docstring); jsonl keeps every event whatever it says.
    `with_summary`: the session's summary on top (txt, vtt; ValueError when there is none)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if text not in TEXTS:
        raise ValueError(f"unknown text choice {text!r}: use one of {', '.join(TEXTS)}")
    if lang not in LANGS and lang not in WHISPER_LANGUAGES:
        raise ValueError(f"unknown language choice {lang!r}: use one of {', '.join(LANGS)} or a language code")
    language = _translation_language(events, lang, target_language)
    on_top = ""
    if with_summary:
        on_top = summary(events, language or target_language)
        if not on_top:
            raise ValueError(
                f"this session has no summary in {language or target_language or 'its language'}: "
                f"make one with `livetranslate summary SESSION`"
            )
        if fmt == "srt":
            raise ValueError("an SRT file has no place for a summary: export txt or vtt with --summary")
    if fmt == "jsonl":
        if lang in LANGS:  # the whole log
            return "".join(e.to_json() + "\n" for e in events)
        # one language: its translations, and everything that is not a translation
        return "".join(
            e.to_json() + "\n"
            for e in events
            if e.kind not in (EventKind.TRANSLATION, EventKind.ENHANCED, EventKind.SUMMARY) or e.language == language
        )
    rows = lines(events, lang, language, text, voice=fmt == "vtt")
    if fmt == "txt":
        top = f"{on_top}\n\n" if on_top else ""
        return top + "".join(f"[{int(s // 60):02d}:{s % 60:04.1f}] {t.replace(chr(10), ' / ')}\n" for s, _, t in rows)
    # a WebVTT comment block ends at a blank line and may not hold "-->"
    note = "NOTE\n" + "\n".join(x.replace("-->", "->") for x in on_top.splitlines() if x.strip()) + "\n\n"
    return header(fmt) + (note if on_top else "") + numbered(rows, fmt)
