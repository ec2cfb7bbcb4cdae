"""What the Redis store's parts share: its Lua scripts (lua/*.lua), retries, and decoding."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from livetranslate import settings
from livetranslate.protocol import Event
from livetranslate.store.files import SessionInfo, _event_from_dict


def lua(name: str) -> str:
    """The text of the Lua script store/lua/NAME.lua (run atomically in Redis)."""
    return (Path(__file__).with_name("lua") / f"{name}.lua").read_text(encoding="utf-8")


log = logging.getLogger("livetranslate.store")


LEASE_ENV = "LIVETRANSLATE_STORE_LEASE_S"


HANDOVER_ENV = "LIVETRANSLATE_STORE_HANDOVER_S"


DEFAULT_LEASE_S = settings.VARIABLES[
    LEASE_ENV
].default  # a dead replica's sessions end this long after its last renewal


DEFAULT_HANDOVER_S = settings.VARIABLES[
    HANDOVER_ENV
].default  # a drained session waits this long for its client to go on elsewhere


# Redis unreachable: a command is retried with backoff for about this long before the stream
# that needed it stops with an error (its audio waits meanwhile in the stream's bounded queue)
RETRY_S = 6.0


HANDED_OVER = "handover:"


def retries(seconds: float) -> int:
    """How many tries of the backoff (0.1, 0.2, 0.4, 0.8, then 1 s) fill about `seconds`."""
    waited, n = 0.0, 0
    while waited < seconds:
        n += 1
        waited += min(1.0, 0.05 * 2**n)
    return max(1, n)


def stream_id(entry_id) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def as_text(value) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def decode(fields: dict) -> Event | None:
    try:
        return _event_from_dict(json.loads(as_text(fields.get(b"e", fields.get("e")))))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def info_from(name: str, meta: dict) -> SessionInfo:
    m = {as_text(k): as_text(v) for k, v in meta.items()}

    def number(key, default=None):
        try:
            return float(m[key])
        except (KeyError, ValueError):
            return default

    def listed(key):
        try:
            value = json.loads(m.get(key, "[]"))
        except ValueError:
            return []
        return value if isinstance(value, list) else []

    counts = {k[2:]: int(v) for k, v in m.items() if k.startswith("c:") and v.lstrip("-").isdigit()}
    return SessionInfo(
        name,
        m.get("source_language", ""),
        m.get("target_language", ""),
        number("started_at", 0.0),
        number("ended_at"),
        m.get("state", "live"),
        counts,
        languages=listed("languages"),
        glossary=listed("glossary"),
    )
