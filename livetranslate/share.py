"""Share links to the captions page, and the read-only token they carry.

A dashboard behind a login lets a link in without one when it carries the token of its
session: an HMAC-SHA256 of the session name under a key derived from the dashboard's secret
(the key that signs its login cookie). The token opens the captions of that one session and
nothing else. `livetranslate share` makes the same token from the same secret: the
environment variable LIVETRANSLATE_DASHBOARD_COOKIE_KEY, or else the key file that
`livetranslate dashboard` keeps (LIVETRANSLATE_DASHBOARD_KEY_FILE, by default
~/.config/livetranslate/dashboard.key). A new secret revokes every link (and every login).

A speaker link (`livetranslate share SESSION --speaker`) opens the gateway's `/speak` page and
carries a token of another kind, made under another derived key: it lets its holder speak
into that one session through the gateway, and nothing else; neither kind passes for the other.
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
GATEWAY_URL_ENV = "LIVETRANSLATE_GATEWAY_URL"  # the gateway's address, for speaker links
DEFAULT_DASHBOARD_URL = settings.VARIABLES[DASHBOARD_URL_ENV].default
CAPTIONS_VIEW = "captions"
STYLES = ("dark", "transparent")  # the captions page's looks (captions.STYLES)
_PURPOSE = b"livetranslate captions share link v1"  # the cookie key signs cookies, this key links
_SPEAKER_PURPOSE = b"livetranslate speaker link v1"  # a speaker token: another key, never a reader's
SPEAK_PATH = "/speak"  # the gateway's page to speak from


def _token(purpose: bytes, session: str, secret: str) -> str:
    # stripped: a key read from a file or a Secret often ends with a newline, one from $(...) not
    key = hmac.new(secret.strip().encode("utf-8"), purpose, hashlib.sha256).digest()
    return hmac.new(key, session.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _valid(purpose: bytes, session: str, token: str | None, secret: str | None) -> bool:
    if not token or not secret or not session:
        return False
    return hmac.compare_digest(_token(purpose, session, secret), token.strip().lower())


def share_token(session: str, secret: str) -> str:
    """A reader's token: the captions of SESSION."""
    return _token(_PURPOSE, session, secret)


def token_valid(session: str, token: str | None, secret: str | None) -> bool:
    return _valid(_PURPOSE, session, token, secret)


def speaker_token(session: str, secret: str) -> str:
    """A speaker's token: speaking into SESSION through the gateway (never reading another)."""
    return _token(_SPEAKER_PURPOSE, session, secret)


def speaker_token_valid(session: str, token: str | None, secret: str | None) -> bool:
    return _valid(_SPEAKER_PURPOSE, session, token, secret)


def speaker_link(gateway_url: str, session: str, token: str, target: str | None = None) -> str:
    """The gateway's page to speak into SESSION, with its speaker token (and the language
    to translate into, preset)."""
    params = {"session": session, "token": token}
    if target:
        params["target"] = target
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return f"{gateway_url.rstrip('/')}{SPEAK_PATH}?{query}"


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
