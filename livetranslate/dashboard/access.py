"""Who may see the dashboard: a login from a credentials file (bcrypt), or no login on a
loopback address only; the login cookie's key."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livetranslate import settings
from livetranslate.launcher.options import is_loopback
from livetranslate.share import (
    COOKIE_KEY_ENV,  # signs the login cookie; the share links' secret too
)

# who may see the dashboard: `livetranslate dashboard` sets these from its options
CREDENTIALS_ENV = "LIVETRANSLATE_DASHBOARD_CREDENTIALS"  # YAML: usernames with bcrypt-hashed passwords


NO_LOGIN_ENV = "LIVETRANSLATE_DASHBOARD_NO_LOGIN"  # "1": open to whoever reaches it (loopback only)


COOKIE_NAME, COOKIE_EXPIRY_DAYS = "livetranslate_dashboard", 1.0


# --- who may see it ------------------------------------------------------------------------
class AccessError(RuntimeError):
    """The dashboard would be open to anyone who reaches it: refuse to show anything."""


NO_CREDENTIALS = (
    "The dashboard needs a login. Create a credentials file with\n"
    "  livetranslate dashboard --add-user NAME --credentials FILE\n"
    f"and start it with --credentials FILE (or ${CREDENTIALS_ENV}=FILE). "
    "For a dashboard that only this machine can reach: --no-login (binds to 127.0.0.1)."
)


def access_mode(bind_address: str | None, environ: Mapping[str, str] | None = None) -> str:
    """ "login" when a credentials file is configured, "open" for --no-login on a loopback
    address; anything else raises AccessError (the app then shows nothing)."""
    if settings.get(CREDENTIALS_ENV, environ):
        return "login"
    if settings.get(NO_LOGIN_ENV, environ):
        if is_loopback(bind_address):
            return "open"
        raise AccessError(
            f"--no-login is only allowed when the dashboard listens on a loopback address, "
            f"not {bind_address or 'every interface'!r}."
        )
    raise AccessError(NO_CREDENTIALS)


class CredentialsError(ValueError):
    pass


def _is_bcrypt(text) -> bool:
    return isinstance(text, str) and re.fullmatch(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", text) is not None


def load_credentials(path: str | Path) -> dict:
    """The `credentials` of a streamlit-authenticator config file: {"usernames": {name:
    {"name": ..., "password": bcrypt hash}}}. Plain-text passwords are refused, not hashed."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CredentialsError(f"cannot read the credentials file {path}: {exc}") from None
    users = (config.get("credentials") or {}).get("usernames") if isinstance(config, dict) else None
    if not isinstance(users, dict) or not users:
        raise CredentialsError(f"{path}: no users (expected credentials: usernames: NAME: password: HASH)")
    for name, user in users.items():
        if not isinstance(user, dict) or not _is_bcrypt(user.get("password")):
            raise CredentialsError(
                f"{path}: the password of {name!r} is not a bcrypt hash; "
                f"set it with `livetranslate dashboard --add-user {name} --credentials {path}`"
            )
    return {"usernames": {str(name).lower(): dict(user) for name, user in users.items()}}


def add_user(path: str | Path, username: str, password: str) -> None:
    """Adds USERNAME (or replaces its password) in a credentials file, written owner-only."""
    import bcrypt
    import yaml

    username, password = username.strip().lower(), password.strip()  # the login form does the same
    if not username:
        raise CredentialsError("the user name is empty")
    if not password:
        raise CredentialsError("the password is empty")
    if len(password.encode()) > 72:
        raise CredentialsError("the password is longer than 72 bytes (bcrypt's limit)")
    path = Path(path)
    config: dict[str, Any] = {}
    if path.exists():
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(config, dict):
            raise CredentialsError(f"{path} is not a credentials file")
    users = config.setdefault("credentials", {}).setdefault("usernames", {}) or {}
    config["credentials"]["usernames"] = users
    users.setdefault(username, {"name": username})
    users[username]["password"] = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)


# Without a configured key, a random one for this process: logins end with a restart.
_PROCESS_COOKIE_KEY = secrets.token_urlsafe(32)


def cookie_key(environ: Mapping[str, str] | None = None) -> str:
    return settings.get(COOKIE_KEY_ENV, environ) or _PROCESS_COOKIE_KEY
