"""The captions page's logic, without Streamlit: which events a viewer of one language reads,
the lines on screen (the newest pinned at the bottom, the interim text replaced as it
grows), and the page as HTML (every text escaped).

A page asks a `Follower` for a `Snapshot` a few times a second; the follower is one viewer
connection per (session, language), shared by every page that shows it (see captions_live).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field

from livetranslate.present import readable
from livetranslate.protocol import INTERIM_KINDS, Event, EventKind
from livetranslate.share import STYLES  # dark; transparent for an OBS browser source

CAPTION_KINDS = frozenset(
    {EventKind.PARTIAL, EventKind.TRANSCRIPT, EventKind.PARTIAL_TRANSLATION, EventKind.TRANSLATION, EventKind.ENHANCED}
)
MAX_LINES = 4  # final lines kept on screen; the page shows the newest largest, at the bottom


def in_language(event: Event, lang: str) -> bool:
    """An event a viewer of LANG reads: the transcripts and interim text of the spoken
    language, the translations (and interim translations) into any other; `end` for everyone."""
    return event.kind == EventKind.END or (event.kind in CAPTION_KINDS and event.language == lang)


def caption_events(client, session: str, lang: str, idle_timeout_s: float = 3600.0) -> Iterator[Event]:
    """SESSION's events in LANG: its history, then live, until `end`. The server translates
    into LANG while someone watches in it (the spoken language costs nothing: its transcripts)."""
    for event in client.watch(session, idle_timeout_s, language=lang):
        if in_language(event, lang):
            yield event


@dataclass(frozen=True)
class Line:
    text: str
    first_segment_id: int
    segment_id: int  # the last segment the line covers
    combined: bool = False  # an enhanced translation of several sentences, read "in context"
    draft: bool = False  # made by the small model while the server was behind (its event's note)


@dataclass(frozen=True)
class Snapshot:
    """What one captions page shows at one moment."""

    session: str = ""
    lang: str = ""
    lines: tuple[Line, ...] = ()  # oldest first; the last one is the newest (pinned)
    interim: str = ""  # what is being said now, replaced as it grows; "" when nothing
    state: str = "connecting"  # connecting | live | ended | waiting | unreachable
    message: str = ""  # for the viewer: why nothing shows yet
    version: int = 0  # grows with every change


@dataclass
class CaptionLines:
    """The lines of one language, fed its events in order (history, then live)."""

    max_lines: int = MAX_LINES
    lines: list[Line] = field(default_factory=list)
    interim: Event | None = None
    _translations: dict[int, Event] = field(default_factory=dict)  # for readable.adds_something

    def add(self, event: Event) -> bool:
        """Takes one event; True when what the page shows changed."""
        if event.kind in INTERIM_KINDS:  # the utterance, or its translation, as it grows
            if self.lines and event.segment_id <= self.lines[-1].segment_id:
                return False  # a late interim of an utterance already final
            changed = self.interim is None or self.interim.text != event.text
            self.interim = event
            return changed
        if event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION):
            if event.kind == EventKind.TRANSLATION:
                self._translations[event.segment_id] = event
                for old in [k for k in self._translations if k < event.segment_id - 64]:
                    del self._translations[old]
            if self.interim is not None and self.interim.segment_id <= event.segment_id:
                self.interim = None
            if event.error or not event.text.strip():
                return True  # a failed translation: nothing to read, the interim went
            self._put(
                Line(
                    event.text.strip(),
                    event.segment_id,
                    event.segment_id,
                    draft=event.kind == EventKind.TRANSLATION and bool(event.note),
                )
            )
            return True
        if event.kind == EventKind.ENHANCED and readable.adds_something(event, self._translations):
            return self._combine(event)
        return False

    def _put(self, line: Line) -> None:
        """In segment order; a line of the same segments replaces the one there."""
        kept = [
            old
            for old in self.lines
            if old.segment_id < line.first_segment_id or old.first_segment_id > line.segment_id
        ]
        kept.append(line)
        kept.sort(key=lambda ln: ln.segment_id)
        self.lines = kept[-self.max_lines :]

    def _combine(self, enhanced: Event) -> bool:
        """The better translation of several sentences replaces their lines, when any of
        them is still on screen (one that scrolled away stays gone)."""
        covered = readable.covered_ids(enhanced)
        if not any(line.segment_id in covered for line in self.lines):
            return False
        self._put(Line(enhanced.text.strip(), covered.start, covered.stop - 1, combined=True))
        return True


# --- the page ------------------------------------------------------------------------------
PAGE_CSS = """
<style>
header, footer, [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stDecoration"], [data-testid="stStatusWidget"],
#MainMenu { display: none !important; }
.block-container, [data-testid="stMainBlockContainer"] { padding: 0 !important; max-width: 100% !important; }
[data-testid="stAppViewContainer"], [data-testid="stMain"] { overflow: hidden; }
.lt-captions { box-sizing: border-box; height: 100vh; display: flex; flex-direction: column;
  justify-content: flex-end; padding: 2vh 4vw 4vh; font-family: system-ui, "Segoe UI", Roboto, sans-serif;
  font-size: clamp(1.5rem, 5vw, 4.5rem); line-height: 1.25; overflow: hidden; }
.lt-line { margin: 0.15em 0; opacity: 0.55; font-size: 0.8em; overflow-wrap: anywhere; }
.lt-line.lt-newest { opacity: 1; font-size: 1em; }
.lt-interim { margin: 0.15em 0; opacity: 0.7; font-style: italic; font-size: 0.9em; overflow-wrap: anywhere; }
.lt-tag { font-size: 0.4em; font-style: normal; opacity: 0.8; margin-right: 0.6em; text-transform: uppercase;
  letter-spacing: 0.05em; vertical-align: middle; }
.lt-status { position: fixed; top: 0.6rem; right: 1rem; font: 0.9rem system-ui, sans-serif; opacity: 0.7; }
.lt-message { font-size: 0.6em; opacity: 0.8; }
</style>
"""
STYLE_CSS = {
    "dark": """<style>
html, body, .stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] { background: #000 !important; }
.lt-captions, .lt-status { color: #fff; }
</style>""",
    # for OBS's browser source: nothing but the text, outlined so it reads on any video
    "transparent": """<style>
html, body, .stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] { background: transparent !important; }
.lt-captions { color: #fff; text-shadow: 0 0 4px #000, 0 0 4px #000, 2px 2px 3px #000; }
.lt-status { display: none; }
</style>""",
}


def page_css(style: str) -> str:
    return PAGE_CSS + STYLE_CSS[style if style in STYLES else "dark"]


def status_text(snapshot: Snapshot) -> str:
    label = {
        "live": "● LIVE",
        "ended": "ended",
        "waiting": "waiting",
        "connecting": "connecting…",
        "unreachable": "server unreachable",
    }.get(snapshot.state, snapshot.state)
    return " · ".join(x for x in (label, snapshot.session, snapshot.lang) if x)


def render_html(snapshot: Snapshot) -> str:
    """The captions as HTML: the older lines dimmed, the newest one large at the bottom, the
    interim text below it. Every text from speech or the LLM is escaped."""
    esc = html.escape
    parts = [
        f'<div class="lt-status" data-state="{esc(snapshot.state)}">{esc(status_text(snapshot))}</div>',
        '<div class="lt-captions">',
    ]
    if not snapshot.lines and not snapshot.interim and snapshot.message:
        parts.append(f'<div class="lt-message">{esc(snapshot.message)}</div>')
    for i, line in enumerate(snapshot.lines):
        newest = " lt-newest" if i == len(snapshot.lines) - 1 else ""
        tag = f'<span class="lt-tag">{esc(readable.COMBINED_NAME)}</span>' if line.combined else ""
        if line.draft:  # quiet, and explained on hover: the better text replaces it when it comes
            tag = f'<span class="lt-tag" title="{esc(readable.DRAFT_EXPLAINED)}">{esc(readable.DRAFT_NAME)}</span>'
        parts.append(f'<div class="lt-line{newest}" data-segment="{line.segment_id}">{tag}{esc(line.text)}</div>')
    if snapshot.interim:
        parts.append(f'<div class="lt-interim">{esc(snapshot.interim)}</div>')
    parts.append("</div>")
    return "".join(parts)
