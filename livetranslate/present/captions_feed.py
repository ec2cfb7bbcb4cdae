"""What one captions page (one browser tab) is sent each time it is drawn: only the lines that
changed since it was last sent, and the page's state (livetranslate.present.captions makes
the lines)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from livetranslate.present.captions import MARKS, MAX_LINES, SIZES, Line, Snapshot, printable


def status_text(snapshot: Snapshot) -> str:
    label = {
        "live": "● LIVE",
        "ended": "ended",
        "waiting": "waiting",
        "connecting": "connecting…",
        "unreachable": "server unreachable",
    }.get(snapshot.state, snapshot.state)
    return printable(" · ".join(x for x in (label, snapshot.session, snapshot.lang) if x))


def line_row(line: Line) -> list:
    return [line.key, line.first_segment_id, line.segment_id, line.text, line.source, line.mark, line.who]


@dataclass
class PageFeed:
    """What one page (one browser tab) was sent. Each time it is drawn the page gets only the
    lines that changed since (`upsert`, `remove`); `base` names the version the change applies
    to. A page that missed one (or was made anew) asks for everything again (`resync`)."""

    epoch: str = ""
    version: int = 0
    resync: str = ""  # the page's last request for everything, answered
    _sent: dict[str, Line] = field(default_factory=dict)
    _where: tuple[str, str] | None = None
    _lines: tuple[Line, ...] = ()  # the lines last sent

    def payload(self, snapshot: Snapshot, resync: str = "", **page) -> dict:
        """The component's arguments: the changes, the page's state and PAGE's settings
        (style, size, note), all plain JSON."""
        full = (snapshot.session, snapshot.lang) != self._where or (bool(resync) and resync != self.resync)
        if full:
            self.epoch, self._sent, self._where = secrets.token_hex(4), {}, (snapshot.session, snapshot.lang)
            self.resync = resync or self.resync
        upsert: list[Line] = []
        remove: list[str] = []
        if full or snapshot.lines is not self._lines:  # (most draws: nothing new)
            sent = self._sent
            upsert = [ln for ln in snapshot.lines if (old := sent.get(ln.key)) is not ln and old != ln]
            keys = {ln.key for ln in snapshot.lines}
            remove = [k for k in sent if k not in keys]
        self._lines = snapshot.lines
        rest = {
            "state": snapshot.state,
            "status": status_text(snapshot),
            "message": snapshot.message,
            "interim": snapshot.interim,
            "interim_source": snapshot.interim_source,
            "dropped": snapshot.dropped,
            "lang": snapshot.lang,
            "spoken": snapshot.spoken,
            "marks": MARKS,
            "sizes": SIZES,
            "obs_lines": MAX_LINES,
            **page,
        }
        base = self.version
        if full or upsert or remove:
            self.version += 1
            self._sent = {ln.key: ln for ln in snapshot.lines}
        return {
            "epoch": self.epoch,
            "version": self.version,
            "base": base,
            "full": full,
            "upsert": [line_row(ln) for ln in upsert],
            "remove": remove,
            **rest,
        }
