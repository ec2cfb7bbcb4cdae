"""The captions page's logic, without Streamlit: which events a page reads, the lines of one
language (in segment order, each improved in place: an organiser's correction outranks the
translation in context, which outranks the first translation), the spoken words beside
them for the bilingual view, and who speaks (a name, else a label: livetranslate.present.speakers).
What each page is sent is captions_feed.py's. The page itself is a component in `captions_page/` (plain JS, every
text set as text, never as markup).

A page asks a `Follower` for a `Snapshot` a few times a second; the follower is one viewer
connection per (session, language), shared by every page that shows it (see
dashboard/followers.py).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from livetranslate.present import readable
from livetranslate.present.speakers import KINDS as SPEAKER_KINDS
from livetranslate.present.speakers import SpeakerBook
from livetranslate.protocol import INTERIM_KINDS, MAX_SESSION_NAME, Event, EventKind
from livetranslate.share import STYLES  # dark; transparent for an OBS browser source

COMPONENT_DIR = Path(__file__).with_name("captions_page")  # index.html, captions.js, captions.css
CAPTION_KINDS = frozenset(
    {
        EventKind.PARTIAL,
        EventKind.TRANSCRIPT,
        EventKind.PARTIAL_TRANSLATION,
        EventKind.TRANSLATION,
        EventKind.ENHANCED,
        EventKind.CORRECTION,
    }
)
SPOKEN_KINDS = frozenset({EventKind.PARTIAL, EventKind.TRANSCRIPT, EventKind.CORRECTION})
MAX_LINES = 4  # the lines an OBS browser source (style=transparent) shows: the newest largest
MAX_KEPT = 2000  # the lines a page keeps to scroll back to; older ones go (the page says how many)
SIZES = (50, 300)  # the text size a reader may choose, in percent of the screen's own size
PENDING_SOURCES = 2  # spoken sentences shown as interim while their translation is on its way
# the quiet mark of a line that is not (or no longer) the first translation, and its meaning
MARKS = {
    "corrected": (readable.CORRECTED_NAME, readable.CORRECTED_EXPLAINED),
    "improved": (readable.IMPROVED_NAME, readable.IMPROVED_EXPLAINED),
    "draft": (readable.DRAFT_NAME, readable.DRAFT_EXPLAINED),
}


def in_language(event: Event, lang: str) -> bool:
    """An event a viewer of LANG reads: the transcripts, corrections and interim text of the
    spoken language, the translations (and interim translations) into any other; `end` for
    everyone."""
    return event.kind in (EventKind.END, *SPEAKER_KINDS) or (event.kind in CAPTION_KINDS and event.language == lang)


def for_page(event: Event, lang: str) -> bool:
    """What a captions page in LANG takes: LANG's events and, for the bilingual view, the
    spoken language's (its transcripts, corrections and interim text)."""
    return in_language(event, lang) or event.kind in SPOKEN_KINDS


def caption_events(client, session: str, lang: str, idle_timeout_s: float = 3600.0) -> Iterator[Event]:
    """SESSION's events for a page in LANG: its history, then live, until `end`. The server
    translates into LANG while someone watches in it (the spoken language costs nothing)."""
    for event in client.watch(session, idle_timeout_s, language=lang):
        if for_page(event, lang):
            yield event


def printable(text: str) -> str:
    """Text with its control characters (a newline, an escape) made visible as �."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def session_problem(name: str) -> str:
    """Why NAME, from a captions link, names no session ("" when it may)."""
    if not name or len(name) > MAX_SESSION_NAME or not name.isprintable():
        return f"a session name is 1 to {MAX_SESSION_NAME} printable characters"
    return ""


def text_size(value: str | None) -> tuple[int | None, str]:
    """A text size from a link (`size=150`, in percent): (the size or None for the device's
    own, a note for the reader when the link's value could not be used as it is)."""
    if value is None or not value.strip():
        return None, ""
    shown = printable(value.strip())[:20]
    try:
        size = round(float(value))
    except (ValueError, OverflowError):
        return None, f"The link's text size “{shown}” is not a number: the usual size is used."
    low, high = SIZES
    if not low <= size <= high:
        kept = min(max(size, low), high)
        return kept, f"The link's text size {shown} is outside {low}–{high} %: {kept} % is used."
    return size, ""


@dataclass(frozen=True)
class Line:
    text: str
    first_segment_id: int
    segment_id: int  # the last segment the line covers
    combined: bool = False  # the translation in context (several sentences), improved later
    draft: bool = False  # made by the small model while the server was behind (its event's note)
    corrected: bool = False  # an organiser's correction
    source: str = ""  # the spoken words it translates (the bilingual view); "" in the spoken language
    who: str = ""  # its speaker, with speaker labels on: the name given, else the label

    @functools.cached_property
    def key(self) -> str:  # (not a field: a page asks for it often)
        return f"{self.first_segment_id}-{self.segment_id}"

    @property
    def mark(self) -> str:
        return "corrected" if self.corrected else "improved" if self.combined else "draft" if self.draft else ""

    @property
    def rank(self) -> int:
        return 2 if self.corrected else 1 if self.combined else 0


@dataclass(frozen=True)
class Snapshot:
    """What one captions page shows at one moment."""

    session: str = ""
    lang: str = ""
    lines: tuple[Line, ...] = ()  # oldest first; the last one is the newest
    interim: str = ""  # what is being said now, replaced as it grows; "" when nothing
    interim_source: str = ""  # the same in the spoken language (the bilingual view)
    state: str = "connecting"  # connecting | live | ended | waiting | unreachable
    message: str = ""  # for the viewer: why nothing shows yet
    dropped: int = 0  # older lines no longer kept
    spoken: str = ""  # the spoken language, once known
    version: int = 0  # grows with every change


@dataclass
class CaptionLines:
    """The lines of one language (LANG; None: every event fed is that language's), fed the
    session's events in order (history, then live)."""

    lang: str | None = None
    max_lines: int = MAX_KEPT
    lines: list[Line] = field(default_factory=list)
    interim: Event | None = None
    interim_source: Event | None = None
    dropped: int = 0
    spoken: str = ""
    _first: dict[int, Event] = field(default_factory=dict)  # each segment's sentence (translation)
    _corrected: dict[int, str] = field(default_factory=dict)  # an organiser's, in LANG
    _source: dict[int, str] = field(default_factory=dict)  # the spoken words, corrected ones included
    _source_corrected: set[int] = field(default_factory=set)
    speakers: SpeakerBook = field(default_factory=SpeakerBook)

    def add(self, event: Event) -> bool:
        """Takes one event; True when what the page shows changed."""
        if event.kind in SPEAKER_KINDS:
            return self.speakers.follow(event) and self._relabel()
        relabelled = False
        if event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION):  # either carries the label
            relabelled = self.speakers.follow(event) and self._relabel()
        return self._add(event) or relabelled

    def _add(self, event: Event) -> bool:
        mine = self.lang is None or event.language == self.lang
        if event.kind == EventKind.TRANSCRIPT:
            self.spoken = event.language or self.spoken
        if not mine:
            return self._add_source(event)
        if event.kind in INTERIM_KINDS:  # the utterance, or its translation, as it grows
            if self.lines and event.segment_id <= self.lines[-1].segment_id:
                return False  # a late interim of an utterance already final
            changed = self.interim is None or self.interim.text != event.text
            self.interim = event
            return changed
        if event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION):
            return self._add_sentence(event)
        if event.kind == EventKind.ENHANCED and readable.adds_something(event, self._first):
            return self._combine(event)
        if event.kind == EventKind.CORRECTION and not event.error:
            return self._correct(event.segment_id, event.text.strip())
        return False

    def pending_source(self) -> str:
        """The spoken words not yet on a line: sentences waiting for their translation, then
        what is being said now."""
        newest = self.lines[-1].segment_id if self.lines else -1
        recent = itertools.islice(reversed(self._source), 16)  # (the newest are the last ones in)
        waiting = [self._source[s] for s in sorted(s for s in recent if s > newest)][-PENDING_SOURCES:]
        if self.interim_source is not None and self.interim_source.segment_id not in self._source:
            waiting.append(self.interim_source.text.strip())
        return " ".join(w for w in waiting if w)

    def _who(self, line: Line) -> str:
        return self.speakers.who(line.first_segment_id)

    def _relabel(self) -> bool:
        """A name given or a line given to another speaker: the kept lines follow."""
        changed = False
        for i, line in enumerate(self.lines):
            if line.who != (who := self._who(line)):
                self.lines[i], changed = dataclasses.replace(line, who=who), True
        return changed

    # --- the spoken language, beside a translation -------------------------------------------
    def _add_source(self, event: Event) -> bool:
        seg = event.segment_id
        if event.kind not in SPOKEN_KINDS:
            return False  # another language's translation: not this page's
        if event.kind == EventKind.PARTIAL:
            if seg in self._source:
                return False  # late: its sentence is final
            changed = self.interim_source is None or self.interim_source.text != event.text
            self.interim_source = event
            return changed
        if event.error or event.language != self.spoken:
            return False  # a correction of another language's translation, a failed transcript
        if event.kind == EventKind.CORRECTION:
            self._source_corrected.add(seg)
        elif seg in self._source_corrected:
            return False  # the organiser's words stay
        self._source[seg] = event.text.strip()
        if self.interim_source is not None and self.interim_source.segment_id <= seg:
            self.interim_source = None
        for i in range(len(self.lines) - 1, -1, -1):
            line = self.lines[i]
            if line.segment_id < seg:
                break
            if line.first_segment_id <= seg:
                self.lines[i] = dataclasses.replace(line, source=self._source_of(line))
        return True

    def _source_of(self, line: Line) -> str:
        if self.lang is None or self.lang == self.spoken:
            return ""
        ids = range(line.first_segment_id, line.segment_id + 1)
        return " ".join(self._source[s] for s in ids if self._source.get(s))

    # --- the reader's language -------------------------------------------------------------
    def _add_sentence(self, event: Event) -> bool:
        seg = event.segment_id
        self._first[seg] = event  # (failed ones too: readable.adds_something reads them)
        if self.interim is not None and self.interim.segment_id <= seg:
            self.interim = None
        if event.error or not event.text.strip():
            return True  # a failed translation: nothing to read, the interim went
        if seg in self._corrected or any(ln.rank > 0 for ln in self._covering(range(seg, seg + 1))):
            return True  # outranked: the organiser's words, or the translation in context, stay
        self._put(self._sentence(seg))
        return True

    def _combine(self, enhanced: Event) -> bool:
        """The better translation of several sentences replaces their lines, when any of them
        is still kept (one dropped stays gone) and none was corrected (that outranks it)."""
        covered = readable.covered_ids(enhanced)
        if any(s in self._corrected for s in covered) or not self._covering(covered):
            return False
        self._put(Line(enhanced.text.strip(), covered.start, covered.stop - 1, combined=True))
        return True

    def _correct(self, seg: int, text: str) -> bool:
        """The latest correction of a segment wins; a line in context that covers it goes back
        to its sentences (a translation made without the correction cannot hold it)."""
        self._corrected[seg] = text
        if self.lines and seg < self.lines[0].first_segment_id and not self._covering(range(seg, seg + 1)):
            return False  # dropped long ago
        self._put(Line(text, seg, seg, corrected=True))  # (no text: the line goes)
        return True

    def _sentence(self, seg: int) -> Line:
        if seg in self._corrected:
            return Line(self._corrected[seg], seg, seg, corrected=True)
        event = self._first.get(seg)
        text = event.text.strip() if event is not None and not event.error else ""
        draft = event is not None and event.kind == EventKind.TRANSLATION and bool(event.note)
        return Line(text, seg, seg, draft=draft)

    def _covering(self, ids: range) -> list[Line]:
        """The lines of any of IDS, in order (the lines are in segment order and never share
        a segment: looked for from the newest back)."""
        found = []
        for line in reversed(self.lines):
            if line.segment_id < ids.start:
                break
            if line.first_segment_id < ids.stop:
                found.append(line)
        return found[::-1]

    def _put(self, line: Line) -> None:
        """In segment order; the line replaces the lines of its segments, and the sentences of
        a replaced line that it does not cover come back as they were."""
        ids = range(line.first_segment_id, line.segment_id + 1)
        replaced = self._covering(ids)
        new = [dataclasses.replace(line, source=self._source_of(line), who=self._who(line))]
        for old in replaced:
            for seg in range(old.first_segment_id, old.segment_id + 1):
                back = self._sentence(seg) if seg not in ids else None
                if back is not None and back.text:
                    new.append(dataclasses.replace(back, source=self._source_of(back), who=self._who(back)))
        new = sorted((ln for ln in new if ln.text), key=lambda ln: ln.segment_id)
        if replaced or (self.lines and self.lines[-1].segment_id > line.segment_id):
            gone = {id(old) for old in replaced}
            self.lines = sorted([ln for ln in self.lines if id(ln) not in gone] + new, key=lambda ln: ln.segment_id)
        else:  # the usual: a new line after the others
            self.lines.extend(new)
        if len(self.lines) > self.max_lines:
            self.dropped += len(self.lines) - self.max_lines
            del self.lines[: len(self.lines) - self.max_lines]
            if len(self._first) > self.max_lines + 64:  # what only dropped lines needed goes too
                oldest = self.lines[0].first_segment_id
                for by_segment in (self._first, self._corrected, self._source):
                    for seg in [s for s in by_segment if s < oldest]:
                        del by_segment[seg]
                self._source_corrected = {s for s in self._source_corrected if s >= oldest}


# --- the Streamlit page around the component -------------------------------------------------
PAGE_CSS = """
<style>
header, footer, [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stDecoration"], [data-testid="stStatusWidget"],
#MainMenu { display: none !important; }
.block-container, [data-testid="stMainBlockContainer"] { padding: 0 !important; max-width: 100% !important; }
[data-testid="stAppViewContainer"], [data-testid="stMain"] { overflow: hidden; }
iframe[title$="livetranslate_captions"] { position: fixed; inset: 0; width: 100vw; height: 100vh;
  height: 100dvh; border: 0; z-index: 1000; }
</style>
"""
BACKGROUND = {"dark": "#000", "transparent": "transparent"}  # behind the component, while it loads


def page_css(style: str) -> str:
    """The page around the captions component: no Streamlit chrome, the component over the
    whole screen."""
    background = BACKGROUND[style if style in STYLES else "dark"]
    return PAGE_CSS + (
        "<style>html, body, .stApp, [data-testid='stAppViewContainer'], [data-testid='stMain']"
        f" {{ background: {background} !important; }}</style>"
    )
