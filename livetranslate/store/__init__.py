"""Durable per-session event log, and live fan-out to viewers; its read side is the
`sessions` model's logic (model_repository/sessions).

Each session is `<data_dir>/<name>.jsonl`: a first line that names the session, then one event
per line, written and fsync'ed before the event is sent, so neither a crash of this process nor
of the machine loses an event already sent. `<name>.meta.json` holds the metadata, replaced
atomically and durably; it is rebuilt from the log when missing or corrupt. Lines are split on
"\\n" only (JSON escapes it inside strings; U+2028 and the like are text), and a torn last line
is skipped instead of failing. One server owns a data directory at a time (`.lock`).
"""

from livetranslate.store.fanout import Hub, Viewer
from livetranslate.store.files import (DATA_DIR_ENV, HEADER_KEY, LOCK_FILE, LOG_SUFFIX, META_SUFFIX, SessionInfo,
                                       StoreError, _dir_bytes, _legacy_name, default_data_dir, safe_name)
from livetranslate.store.retention import format_age, format_size, parse_duration, parse_size
from livetranslate.store.sessions import SessionStore, session_report

__all__ = ["DATA_DIR_ENV", "HEADER_KEY", "Hub", "LOCK_FILE", "LOG_SUFFIX", "META_SUFFIX", "SessionInfo", "SessionStore",
           "StoreError", "Viewer", "default_data_dir", "format_age", "format_size", "parse_duration", "parse_size",
           "safe_name", "session_report"]
