"""Durable per-session event log, and live fan-out to viewers; its read side is the
`sessions` model's logic (model_repository/sessions). Two stores, one interface: the local
one below (the default: no extra service), and Redis shared by several servers
(redis_store.py), chosen by `open_store`.

In the local store, each session is `<data_dir>/<name>.jsonl`: a first line that names the session, then one event
per line, written and fsync'ed before the event is sent, so neither a crash of this process nor
of the machine loses an event already sent. `<name>.meta.json` holds the metadata, replaced
atomically and durably; it is rebuilt from the log when missing or corrupt. Lines are split on
"\\n" only (JSON escapes it inside strings; U+2028 and the like are text), and a torn last line
is skipped instead of failing. One server owns a data directory at a time (`.lock`).
"""

from livetranslate import settings
from livetranslate.store.fanout import Hub, Viewer
from livetranslate.store.files import (
    DATA_DIR_ENV,
    HEADER_KEY,
    LOCK_FILE,
    LOG_SUFFIX,
    META_SUFFIX,
    SessionBusy,
    SessionInfo,
    StoreError,
    default_data_dir,
    safe_name,
)
from livetranslate.store.interface import NoStore, SharedStore, Store
from livetranslate.store.retention import (
    format_age,
    format_size,
    parse_duration,
    parse_size,
)
from livetranslate.store.sessions import SessionStore, session_report

STORE_ENV = "LIVETRANSLATE_STORE"
REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_store_url(url: str) -> str:
    """A `--store` value: empty (the local store) or a Redis URL; ValueError saying what works."""
    url = (url or "").strip()
    if url and url.partition("://")[0] not in REDIS_SCHEMES:
        raise ValueError(
            f"unknown session store {url!r}: give a Redis URL (redis://host:6379/0, rediss:// for "
            f"TLS, unix:///path/redis.sock), or nothing for the local store in the data directory"
        )
    return url


def open_store(url: str | None = None, hub: Hub | None = None, *, serving: bool = False) -> Store:
    """The session store: `url` (else the environment's LIVETRANSLATE_STORE) names a Redis
    shared by several servers; without one, the local event log of this server's data
    directory. `serving`: the pipeline's own store (it holds the data directory's lock, or
    takes leases in Redis); readers pass False."""
    url = check_store_url(settings.get(STORE_ENV) if url is None else url)
    if url:
        from livetranslate.store.redis_store import RedisSessionStore

        return RedisSessionStore(url, hub, serving=serving)
    return SessionStore(hub=hub, exclusive=serving)


__all__ = [
    "NoStore",
    "SharedStore",
    "Store",
    "DATA_DIR_ENV",
    "STORE_ENV",
    "check_store_url",
    "open_store",
    "HEADER_KEY",
    "Hub",
    "LOCK_FILE",
    "LOG_SUFFIX",
    "META_SUFFIX",
    "SessionBusy",
    "SessionInfo",
    "SessionStore",
    "StoreError",
    "Viewer",
    "default_data_dir",
    "format_age",
    "format_size",
    "parse_duration",
    "parse_size",
    "safe_name",
    "session_report",
]
