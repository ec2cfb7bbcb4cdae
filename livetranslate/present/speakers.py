"""Who spoke in a session, and for how long: from its transcripts' speaker labels."""

from __future__ import annotations

from dataclasses import dataclass

from livetranslate.protocol import Event, EventKind


@dataclass(frozen=True)
class SpeakerTime:
    label: str  # S1, S2, ...
    lines: int
    seconds: float  # from each line's first word to its last (its utterance's time without words)
    first_s: float  # when the speaker first spoke (session time)


def speaker_times(events: list[Event]) -> list[SpeakerTime]:
    """Each label's lines and speaking time, in the order the speakers first spoke; lines
    without a label (labels off, or the speakers model failed) are left out."""
    found: dict[str, list[float]] = {}  # label -> [lines, seconds, first]
    for e in events:
        if e.kind != EventKind.TRANSCRIPT or not e.speaker or e.error:
            continue
        start, end = (e.words[0].start_s, e.words[-1].end_s) if e.words else (e.start_s, e.end_s)
        entry = found.setdefault(e.speaker, [0, 0.0, e.start_s])
        entry[0] += 1
        entry[1] += max(0.0, end - start)
        entry[2] = min(entry[2], e.start_s)
    return sorted(
        (SpeakerTime(label, int(n), round(seconds, 1), first) for label, (n, seconds, first) in found.items()),
        key=lambda s: s.first_s,
    )
