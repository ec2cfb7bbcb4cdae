"""A transcript's words and when each was said, and how they travel: compactly as JSON
in a tensor (WORDS), as dicts in events' JSON (jsonl, stored sessions, exports)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    """One word of a transcript and when it was said (seconds: on the session's clock in an
    event, from the start of its audio in whisper's answer); `probability` is Whisper's."""

    word: str
    start_s: float
    end_s: float
    probability: float = 0.0

    def to_dict(self) -> dict:
        return {"word": self.word, "start_s": self.start_s, "end_s": self.end_s, "probability": self.probability}


def words_to_json(words: tuple[Word, ...] | list[Word]) -> str:
    """Compact, for a tensor: [[word, start_s, end_s, probability], ...] ("" for none)."""
    if not words:
        return ""
    rows = [[w.word, round(w.start_s, 3), round(w.end_s, 3), round(w.probability, 3)] for w in words]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def words_from_json(text: str | list) -> tuple[Word, ...]:
    """words_to_json's rows, or dicts as Word.to_dict writes them; ValueError when neither."""
    if not text:
        return ()
    try:
        rows = json.loads(text) if isinstance(text, str) else text
        return tuple(_word(row) for row in rows)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"WORDS is not a list of words with their times: {exc}") from None


def _word(row) -> Word:
    if isinstance(row, dict):
        return Word(str(row["word"]), float(row["start_s"]), float(row["end_s"]), float(row.get("probability", 0.0)))
    word, start, end, probability = row
    return Word(str(word), float(start), float(end), float(probability))
