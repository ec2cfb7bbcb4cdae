"""What the Streamlit dashboard (dashboard/app.py) shows and who may see it, without Streamlit:

status.py     server health, Triton metrics, a session as rows of text
access.py     the login: credentials file, loopback-only --no-login, cookie key
uploads.py    audio files streamed to the server a block at a time
followers.py  the connections behind the captions page
revisions.py  an organiser's corrections and summaries in a session's view
"""

from __future__ import annotations

from livetranslate.dashboard.access import (
    COOKIE_EXPIRY_DAYS,
    COOKIE_NAME,
    CREDENTIALS_ENV,
    NO_CREDENTIALS,
    NO_LOGIN_ENV,
    AccessError,
    CredentialsError,
    access_mode,
    add_user,
    cookie_key,
    is_loopback,
    load_credentials,
)
from livetranslate.dashboard.status import (
    CA_ENV,
    HTTP_ENV,
    METRICS_ENV,
    MODELS,
    TLS_ENV,
    URL_ENV,
    Endpoints,
    delays,
    escape_markdown,
    fetch_metrics,
    health,
    http_json,
    model_problems,
    parse_metrics,
    percentile,
    rates,
    session_rows,
    stage_table,
)
from livetranslate.dashboard.uploads import (
    DEFAULT_MAX_UPLOAD_MB,
    MAX_UPLOAD_ENV,
    UPLOAD_FORMATS,
    UploadedAudio,
    UploadError,
    max_upload_mb,
)
from livetranslate.share import (
    COOKIE_KEY_ENV,  # signs the login cookie; the share links' secret too
)

__all__ = [
    "COOKIE_KEY_ENV",
    "AccessError",
    "CA_ENV",
    "COOKIE_EXPIRY_DAYS",
    "COOKIE_NAME",
    "CREDENTIALS_ENV",
    "CredentialsError",
    "DEFAULT_MAX_UPLOAD_MB",
    "Endpoints",
    "HTTP_ENV",
    "MAX_UPLOAD_ENV",
    "METRICS_ENV",
    "MODELS",
    "NO_CREDENTIALS",
    "NO_LOGIN_ENV",
    "TLS_ENV",
    "UPLOAD_FORMATS",
    "URL_ENV",
    "UploadError",
    "UploadedAudio",
    "access_mode",
    "add_user",
    "cookie_key",
    "delays",
    "escape_markdown",
    "fetch_metrics",
    "health",
    "http_json",
    "is_loopback",
    "load_credentials",
    "max_upload_mb",
    "model_problems",
    "parse_metrics",
    "percentile",
    "rates",
    "session_rows",
    "stage_table",
]
