"""The `/speak` WebSocket's messages and who may speak, as pure logic (live.py runs them).

The page sends, as its first message, a JSON text `start` (the session, the languages, the
caller's key or a speaker link's token, where the session's clock goes on from), then binary
messages of raw audio: 16 kHz, 16-bit little-endian, mono, at most `MAX_FRAME_BYTES` each, and
last a JSON `{"type": "stop"}` (the open utterance is finished, the session ends). The gateway
answers with JSON texts: `ready` (the session, the readers' link), `ack` (audio received so
far, so that the page resends only what was not), `event` (the server's events), `status`
and `end`. A message the gateway cannot use closes the socket with a code and a reason that
says why (at most 123 bytes, as WebSocket allows)."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass

import numpy as np

from livetranslate import share
from livetranslate.languages import UnknownLanguage, code_for
from livetranslate.protocol import MAX_SESSION_NAME, Event, EventKind

RATE_HZ = 16_000  # what the page sends, resampled from the microphone's rate
MAX_FRAME_S = 1.0
MAX_FRAME_BYTES = int(RATE_HZ * MAX_FRAME_S) * 2  # 32,000 bytes: one second of audio
MAX_TEXT_BYTES = 16_384  # a start or stop message
MAX_TIME_BASE_S = 366 * 86400.0  # a session's clock goes on from at most a year
MAX_REASON_BYTES = 123  # what a WebSocket close frame carries

# close codes (RFC 6455 and the 4000s an application may use)
NORMAL = 1000
UNSUPPORTED = 1003  # not PCM, not JSON, not a message this protocol has
POLICY = 1008  # another site's page
TOO_BIG = 1009
FAILED = 1011  # the server failed the stream, or the gateway did
UNAUTHORIZED = 4401  # no key the server takes, a speaker token that is not this session's
FORBIDDEN = 4403  # a speaker link on a gateway that does not take them

# containers a page might send by mistake: named, so the reason says what to send instead
_CONTAINERS = {b"RIFF": "a WAV file", b"OggS": "Ogg", b"\x1aE\xdf\xa3": "WebM/Matroska", b"fLaC": "FLAC"}


class SpeakError(Exception):
    """A message the gateway cannot use: the socket closes with `code` and `reason`."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, close_reason(reason)


def close_reason(text: str) -> str:
    """TEXT cut to what a close frame carries (123 bytes of UTF-8), whole characters only."""
    data = " ".join(text.split()).encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return data.decode("utf-8")
    return data[: MAX_REASON_BYTES - 3].decode("utf-8", errors="ignore") + "..."


@dataclass(frozen=True)
class Start:
    session: str  # "" : the gateway names it
    language: str  # the spoken language's code, or auto
    target: str
    translate: bool = True
    partials: bool = True
    time_base_s: float = 0.0  # a page that reconnects: the audio it delivered before
    key: str | None = None
    token: str | None = None


def new_session() -> str:
    return f"speak-{uuid.uuid4().hex[:12]}"


def _text(message: dict, name: str, limit: int) -> str | None:
    value = message.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise SpeakError(UNSUPPORTED, f"start: {name} must be printable text of at most {limit} characters")
    return value.strip() or None


def _language(message: dict, name: str, default: str, allow_auto: bool) -> str:
    value = _text(message, name, 64)
    try:
        return code_for(value, allow_auto=allow_auto) if value else default
    except UnknownLanguage as exc:
        raise SpeakError(UNSUPPORTED, f"start: {exc}") from None


def parse_start(text: str | bytes) -> Start:
    """The first message: a JSON object with "type": "start" (SpeakError otherwise)."""
    if isinstance(text, bytes):
        raise SpeakError(UNSUPPORTED, "the first message must be the JSON start message, not audio")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise SpeakError(TOO_BIG, f"the start message is larger than {MAX_TEXT_BYTES} bytes")
    try:
        message = json.loads(text)
    except ValueError:
        raise SpeakError(UNSUPPORTED, 'the first message must be JSON: {"type": "start", ...}') from None
    if not isinstance(message, dict) or message.get("type") != "start":
        raise SpeakError(UNSUPPORTED, 'the first message must be {"type": "start", ...}')
    time_base = message.get("time_base_s", 0.0)
    if (
        isinstance(time_base, bool)
        or not isinstance(time_base, int | float)
        or not math.isfinite(time_base)
        or not 0 <= time_base <= MAX_TIME_BASE_S
    ):
        raise SpeakError(UNSUPPORTED, "start: time_base_s must be seconds from 0 to a year")
    flags = {name: message.get(name, True) for name in ("translate", "partials")}
    if not all(isinstance(value, bool) for value in flags.values()):
        raise SpeakError(UNSUPPORTED, "start: translate and partials must be true or false")
    return Start(
        session=_text(message, "session", MAX_SESSION_NAME) or "",
        language=_language(message, "language", "de", allow_auto=True),
        target=_language(message, "target", "en", allow_auto=False),
        translate=flags["translate"],
        partials=flags["partials"],
        time_base_s=float(time_base),
        key=_text(message, "key", 1024),
        token=_text(message, "token", 128),
    )


def check_key(key: str | None) -> None:
    if key is not None and not all(" " <= c <= "~" for c in key):  # what a gRPC header may carry
        raise SpeakError(UNAUTHORIZED, "the key has characters no key has")


def authorize(start: Start, secret: str | None, gateway_key: str | None, speaker_links: bool) -> tuple[str, str | None]:
    """The session to speak into and the key to stream with. A key is passed on to the server,
    which decides (as for the API); a speaker token streams with the gateway's own key, into
    its one session only, and only where the gateway takes speaker links."""
    if start.token is None:
        check_key(start.key)
        return start.session or new_session(), start.key
    if not speaker_links or secret is None:
        raise SpeakError(FORBIDDEN, "this gateway takes no speaker links (gateway --speaker-links)")
    if not start.session or not share.speaker_token_valid(start.session, start.token, secret):
        raise SpeakError(UNAUTHORIZED, "the speaker link is not valid for this session")
    return start.session, gateway_key


def check_frame(data: bytes) -> np.ndarray:
    """A binary message as 16-bit PCM samples (SpeakError when it is not)."""
    if len(data) > MAX_FRAME_BYTES:
        raise SpeakError(TOO_BIG, f"an audio message of {len(data)} bytes: at most {MAX_FRAME_BYTES} (1 s)")
    for magic, name in _CONTAINERS.items():
        if data.startswith(magic):
            raise SpeakError(UNSUPPORTED, f"{name} is not raw PCM: send 16 kHz 16-bit mono samples")
    if len(data) % 2:
        raise SpeakError(UNSUPPORTED, f"not 16-bit PCM: {len(data)} bytes is an odd number")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def parse_control(text: str) -> str:
    """A text message after the start: only `stop` is one."""
    try:
        message = json.loads(text) if len(text) <= MAX_TEXT_BYTES else None
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("type") != "stop":
        raise SpeakError(UNSUPPORTED, 'after the start only audio (binary) and {"type": "stop"} are sent')
    return "stop"


def event_message(event: Event) -> dict:
    """A server event as the page reads it."""
    kind = event.kind.value if isinstance(event.kind, EventKind) else str(event.kind)
    message = {
        "type": "event",
        "kind": kind,
        "text": event.text,
        "segment_id": event.segment_id,
        "first_segment_id": event.first_segment_id,
        "start_s": round(event.start_s, 3),
        "end_s": round(event.end_s, 3),
        "language": event.language,
    }
    if event.error:
        message["error"] = event.error
    if event.note:
        message["note"] = event.note
    return message


def ready_message(session: str, language: str, target: str, reader_link: str | None, note: str) -> dict:
    return {
        "type": "ready",
        "session": session,
        "language": language,
        "target": target,
        "share_link": reader_link,
        "note": note,
        "rate": RATE_HZ,
        "max_frame_bytes": MAX_FRAME_BYTES,
    }


def reader_link(dashboard_url: str | None, session: str, target: str, secret: str | None) -> tuple[str | None, str]:
    """The captions link for readers, and what the page says about it."""
    if not dashboard_url:
        return None, "no reader link: the gateway was started without --dashboard-url"
    token = share.share_token(session, secret) if secret else None
    note = "" if token else "the link has no token: it opens only a dashboard without a login"
    return share.share_link(dashboard_url, session, target, token), note


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser names the page's origin: only the gateway's own pages may speak (a site the
    speaker visits must not reach a gateway on their loopback). No Origin: not a browser."""
    if origin is None:
        return True
    if not host:
        return False
    _, _, rest = origin.partition("://")
    return rest.rstrip("/").lower() == host.strip().lower()
