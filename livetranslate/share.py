"""Share links to the captions page, and the read-only token they carry.

A dashboard behind a login lets a link in without one when it carries the token of its
session: an HMAC-SHA256 of the session name under a key derived from the dashboard's secret
(the key that signs its login cookie). The token opens the captions of that one session and
nothing else. `livetranslate share` makes the same token from the same secret: the
environment variable LIVETRANSLATE_DASHBOARD_COOKIE_KEY, or else the key file that
`livetranslate dashboard` keeps (LIVETRANSLATE_DASHBOARD_KEY_FILE, by default
~/.config/livetranslate/dashboard.key). A new secret revokes every link (and every login).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from livetranslate import settings

COOKIE_KEY_ENV = "LIVETRANSLATE_DASHBOARD_COOKIE_KEY"  # the dashboard's secret (also in dashboard.py)
KEY_FILE_ENV = "LIVETRANSLATE_DASHBOARD_KEY_FILE"
DASHBOARD_URL_ENV = "LIVETRANSLATE_DASHBOARD_URL"
DEFAULT_DASHBOARD_URL = settings.VARIABLES[DASHBOARD_URL_ENV].default
CAPTIONS_VIEW = "captions"
STYLES = ("dark", "transparent")  # the captions page's looks (captions.STYLES)
_PURPOSE = b"livetranslate captions share link v1"  # the cookie key signs cookies, this key links


def share_token(session: str, secret: str) -> str:
    # stripped: a key read from a file or a Secret often ends with a newline, one from $(...) not
    key = hmac.new(secret.strip().encode("utf-8"), _PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, session.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def token_valid(session: str, token: str | None, secret: str | None) -> bool:
    if not token or not secret or not session:
        return False
    return hmac.compare_digest(share_token(session, secret), token.strip().lower())


def share_link(
    dashboard_url: str, session: str, lang: str | None = None, token: str | None = None, style: str | None = None
) -> str:
    """The captions page of SESSION on the dashboard at DASHBOARD_URL."""
    params = {"view": CAPTIONS_VIEW, "session": session}
    if lang:
        params["lang"] = lang
    if style:
        params["style"] = style
    if token:
        params["token"] = token
    return f"{dashboard_url.rstrip('/')}/?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"


def key_file(environ: Mapping[str, str] | None = None) -> Path:
    return settings.get(KEY_FILE_ENV, environ)


def dashboard_secret(environ: Mapping[str, str] | None = None) -> str | None:
    """The dashboard's secret as `livetranslate share` finds it, or None."""
    if settings.get(COOKIE_KEY_ENV, environ):
        return settings.get(COOKIE_KEY_ENV, environ)
    try:
        return key_file(environ).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ensure_dashboard_secret(environ: Mapping[str, str] | None = None) -> str:
    """The secret for a dashboard with a login: from the environment, or the key file,
    made (owner-only) on first use so that logins and share links survive a restart."""
    secret = dashboard_secret(environ)
    if secret:
        return secret
    path = key_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another start made it meanwhile: use theirs
        return dashboard_secret(environ) or secret
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret
