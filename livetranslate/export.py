"""Exports of a stored session: txt, srt, vtt, jsonl; source, target or both languages."""

from __future__ import annotations

from livetranslate.protocol import Event, EventKind
from livetranslate.subtitles import cue, header

FORMATS = ("txt", "srt", "vtt", "jsonl")
LANGS = ("source", "target", "both")


def _lines(events: list[Event], lang: str) -> list[tuple[float, float, str]]:
    """(start, end, text) per segment, in segment order."""
    transcripts = {e.segment_id: e for e in events if e.kind == EventKind.TRANSCRIPT}
    translations = {e.segment_id: e for e in events if e.kind == EventKind.TRANSLATION and not e.error and e.text}
    rows = []
    for seg_id in sorted(transcripts):
        t = transcripts[seg_id]
        source, target = t.text, translations.get(seg_id).text if seg_id in translations else ""
        text = {"source": source, "target": target, "both": "\n".join(x for x in (source, target) if x)}[lang]
        if text:
            rows.append((t.start_s, t.end_s, text))
    return rows


def export(events: list[Event], fmt: str, lang: str = "both") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if lang not in LANGS:
        raise ValueError(f"unknown language choice {lang!r}: use one of {', '.join(LANGS)}")
    if fmt == "jsonl":
        return "".join(e.to_json() + "\n" for e in events)
    rows = _lines(events, lang)
    if fmt == "txt":
        return "".join(f"[{int(s // 60):02d}:{s % 60:04.1f}] {text.replace(chr(10), ' / ')}\n" for s, _, text in rows)
    return header(fmt) + "".join(cue(i, s, e, text, fmt) for i, (s, e, text) in enumerate(rows, 1))
