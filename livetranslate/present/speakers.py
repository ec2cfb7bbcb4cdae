"""Who said each line of a session, as readers are shown it, and for how long each spoke.

A transcript carries its speaker's label (S1, S2, ...; with speaker labels on). Two later events
change what readers see: `speaker_update` gives a line another label (a later look at the voices
merged two speakers or moved a short line), `speaker_name` names a label (`livetranslate speakers
rename`). The latest of each wins; a translation of a line shows its line's speaker. While a
session has only one speaker and it has no name, readers are shown no label at all: "S1: " before
every line of a talk says nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from livetranslate.protocol import Event, EventKind

KINDS = frozenset({EventKind.SPEAKER_NAME, EventKind.SPEAKER_UPDATE})  # the events that change who is shown
CARRIERS = frozenset({EventKind.TRANSCRIPT, EventKind.TRANSLATION})  # a line's label, as it was first given


@dataclass
class SpeakerBook:
    """Each line's label and each label's name, followed event by event (a live view) or
    read from a whole session (exports)."""

    labels: dict[int, str] = field(default_factory=dict)  # segment id -> label
    names: dict[str, str] = field(default_factory=dict)  # label -> name
    _lines: Counter = field(default_factory=Counter)  # label -> its lines now

    @classmethod
    def of(cls, events: Iterable[Event]) -> SpeakerBook:
        book = cls()
        for event in events:
            book.follow(event)
        return book

    def follow(self, event: Event) -> bool:
        """Takes one event in; True when it changed who a line already shown is (a name or a
        relabelled line: a live view redraws)."""
        if event.kind == EventKind.SPEAKER_NAME and event.speaker:
            changed = self.names.get(event.speaker) != event.text
            self.names[event.speaker] = event.text
            return changed
        if event.kind == EventKind.SPEAKER_UPDATE and event.speaker and event.segment_id >= 0:
            before = self.labels.get(event.segment_id)
            self._label(event.segment_id, event.speaker)
            return before != event.speaker
        if event.kind in CARRIERS and event.speaker and event.segment_id not in self.labels:
            several = len(self._lines) > 1
            self._label(event.segment_id, event.speaker)  # (an update that came first stands)
            return several != (len(self._lines) > 1)  # a second speaker: the first one's lines say who now
        return False

    def _label(self, segment_id: int, label: str) -> None:
        old = self.labels.get(segment_id)
        if old is not None:
            self._lines[old] -= 1
            if not self._lines[old]:
                del self._lines[old]
        self.labels[segment_id] = label
        self._lines[label] += 1

    def label(self, segment_id: int, fallback: str = "") -> str:
        return self.labels.get(segment_id, fallback)

    def name(self, label: str) -> str:
        """The label's name, else the label itself; "" for none, and while the session has
        only this one speaker, unnamed."""
        if label in self.names:
            return self.names[label]
        return label if label and (len(self._lines) > 1 or label not in self._lines) else ""

    def who(self, segment_id: int, fallback: str = "") -> str:
        """What readers see before a line: its speaker's name, else its label ("" without one).
        `fallback`: the label the event itself carries, for a line this book has not seen."""
        return self.name(self.label(segment_id, fallback))

    def __bool__(self) -> bool:
        return bool(self.labels or self.names)


@dataclass(frozen=True)
class SpeakerTime:
    label: str  # S1, S2, ...
    lines: int
    seconds: float  # from each line's first word to its last (its utterance's time without words)
    first_s: float  # when the speaker first spoke (session time)
    name: str = ""  # given with `speakers rename`, else ""


def speaker_times(events: list[Event]) -> list[SpeakerTime]:
    """Each label's lines and speaking time, in the order the speakers first spoke; lines
    without a label (labels off, or the speakers model failed) are left out."""
    book = SpeakerBook.of(events)
    found: dict[str, list[float]] = {}  # label -> [lines, seconds, first]
    for e in events:
        label = book.label(e.segment_id, e.speaker)
        if e.kind != EventKind.TRANSCRIPT or not label or e.error:
            continue
        start, end = (e.words[0].start_s, e.words[-1].end_s) if e.words else (e.start_s, e.end_s)
        entry = found.setdefault(label, [0, 0.0, e.start_s])
        entry[0] += 1
        entry[1] += max(0.0, end - start)
        entry[2] = min(entry[2], e.start_s)
    return sorted(
        (
            SpeakerTime(label, int(n), round(seconds, 1), first, book.names.get(label, ""))
            for label, (n, seconds, first) in found.items()
        ),
        key=lambda s: s.first_s,
    )
