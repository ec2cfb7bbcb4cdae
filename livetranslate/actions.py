"""An organiser's requests on a stored session, as they travel (the SESSION_ACTION tensor of
`pipeline`, JSON): correct one transcript line, summarize the session in a language, or name
one of its speakers.
Checked here, on both sides, so a bad request gets a plain answer before any work is done."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from livetranslate.protocol import MAX_SESSION_NAME, ProtocolError, check_language

MAX_EDIT_CHARS = 2000  # a corrected line; a transcript line is a sentence or two
MAX_ACTION_BYTES = 16_384
MAX_NAME_CHARS = 60  # a speaker's name, as every surface shows it before the lines
ACTIONS = ("edit", "summary", "rename")
SPEAKER_LABEL = re.compile(r"S[1-9][0-9]{0,3}")  # as the pipeline gives them: S1, S2, ...


def speaker_name(name: object) -> str:
    """A speaker's name as it is kept: one line of printable text, spaces collapsed, 1 to
    MAX_NAME_CHARS characters (markup is kept as text: every surface shows it as such).
    ProtocolError says what is wrong."""
    if not isinstance(name, str):
        raise ProtocolError("a speaker's name must be text")
    text = "".join(ch for ch in " ".join(name.split()) if ch.isprintable())
    if not text:
        raise ProtocolError("a speaker's name needs at least one letter (it is empty)")
    if len(text) > MAX_NAME_CHARS:
        raise ProtocolError(f"a speaker's name is at most {MAX_NAME_CHARS} characters, got {len(text)}")
    return text


@dataclass(frozen=True)
class SessionAction:
    """`edit`: `segment_id`'s transcript becomes `text` (a revision beside the original),
    translated again. `summary`: the session's decisions and action items in `language`.
    `rename`: the speaker labelled `speaker` (S1, S2, ...) is called `text` from now on."""

    action: str
    session: str
    segment_id: int = -1
    text: str = ""
    language: str = ""
    speaker: str = ""

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ProtocolError(f"unknown session action {self.action!r}: use one of {', '.join(ACTIONS)}")
        name = self.session.strip()
        if not name or len(name) > MAX_SESSION_NAME or not name.isprintable():
            raise ProtocolError(f"a session action must name a session: 1 to {MAX_SESSION_NAME} printable characters")
        object.__setattr__(self, "session", name)
        if self.action == "edit":
            if isinstance(self.segment_id, bool) or not isinstance(self.segment_id, int) or self.segment_id < 0:
                raise ProtocolError(f"a correction needs the line's segment id (0 or more), got {self.segment_id!r}")
            if not isinstance(self.text, str):
                raise ProtocolError("a correction's text must be text")
            text = " ".join(self.text.split())  # one line: no control characters, no line breaks
            if not text:
                raise ProtocolError("a correction needs the corrected text (it is empty)")
            if len(text) > MAX_EDIT_CHARS:
                raise ProtocolError(f"a correction is at most {MAX_EDIT_CHARS} characters, got {len(text)}")
            if not text.isprintable():
                text = "".join(ch for ch in text if ch.isprintable())
            object.__setattr__(self, "text", text)
        if self.action == "rename":
            if not isinstance(self.speaker, str) or not SPEAKER_LABEL.fullmatch(self.speaker.strip().upper()):
                raise ProtocolError(f"name a speaker by its label (S1, S2, ...), got {self.speaker!r}")
            object.__setattr__(self, "speaker", self.speaker.strip().upper())
            object.__setattr__(self, "text", speaker_name(self.text))
        if self.language:
            object.__setattr__(self, "language", check_language(str(self.language), "language"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes) -> SessionAction:
        if len(data) > MAX_ACTION_BYTES:
            raise ProtocolError(f"a session action is at most {MAX_ACTION_BYTES} bytes")
        try:
            fields = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"a session action must be JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise ProtocolError("a session action must be a JSON object")
        known = {"action", "session", "segment_id", "text", "language", "speaker"}
        unknown = set(fields) - known
        if unknown:
            raise ProtocolError(f"unknown field(s) in a session action: {', '.join(sorted(unknown))}")
        if not isinstance(fields.get("action"), str) or not isinstance(fields.get("session"), str):
            raise ProtocolError("a session action needs `action` and `session` (text)")
        if not isinstance(fields.get("language", ""), str):
            raise ProtocolError("a session action's `language` must be text")
        return cls(**fields)
