"""Exports of a stored session: txt, srt, vtt, jsonl; the source, the speaker's target
language, both, or any other language the session's translations were stored in (the
languages its viewers asked for)."""

from __future__ import annotations

from livetranslate.protocol import WHISPER_LANGUAGES, Event, EventKind
from livetranslate.subtitles import cue, header

FORMATS = ("txt", "srt", "vtt", "jsonl")
LANGS = ("source", "target", "both")  # or a language code: that language's translations


def languages(events: list[Event], target_language: str = "") -> list[str]:
    """The languages a session's translations were stored in, the speaker's target first."""
    found = dict.fromkeys(e.language for e in events if e.kind == EventKind.TRANSLATION and e.language)
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


def _lines(events: list[Event], lang: str, language: str) -> list[tuple[float, float, str]]:
    """(start, end, text) per segment, in segment order."""
    transcripts = {e.segment_id: e for e in events if e.kind == EventKind.TRANSCRIPT}
    translations = {e.segment_id: e for e in events if e.kind == EventKind.TRANSLATION and not e.error and e.text
                    and e.language == language}
    rows = []
    for seg_id in sorted(transcripts):
        t = transcripts[seg_id]
        source, target = t.text, translations.get(seg_id).text if seg_id in translations else ""
        if lang == "source":
            text = source
        elif lang == "both":
            text = "\n".join(x for x in (source, target) if x)
        else:
            text = target
        if text:
            rows.append((t.start_s, t.end_s, text))
    return rows


def export(events: list[Event], fmt: str, lang: str = "both", target_language: str = "") -> str:
    """`lang`: source, target (the speaker's `target_language`; without it, the language of
    the first translation), both, or a language code the session has translations in."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if lang not in LANGS and lang not in WHISPER_LANGUAGES:
        raise ValueError(f"unknown language choice {lang!r}: use one of {', '.join(LANGS)} or a language code")
    language = _translation_language(events, lang, target_language)
    if fmt == "jsonl":
        if lang in LANGS:  # the whole log
            return "".join(e.to_json() + "\n" for e in events)
        # one language: its translations, and everything that is not a translation
        return "".join(e.to_json() + "\n" for e in events
                       if e.kind not in (EventKind.TRANSLATION, EventKind.ENHANCED) or e.language == language)
    rows = _lines(events, lang, language)
    if fmt == "txt":
        return "".join(f"[{int(s // 60):02d}:{s % 60:04.1f}] {text.replace(chr(10), ' / ')}\n" for s, _, text in rows)
    return header(fmt) + "".join(cue(i, s, e, text, fmt) for i, (s, e, text) in enumerate(rows, 1))
