"""Named client keys, each with its own quota: `serve --keys-file FILE`.

One line per client: a name, its key, and optionally its limits, e.g.

    # name      key                                   limits (default: 2 speakers, 20 viewers)
    alice       9c1f0e4e6b0b4a7d8e2f3a1b5c6d7e8f
    dashboard   3a9d51c0f4e24b1f9a6c2e8d7b5a4f30      streams=4 viewers=150
    gateway     e1d2c3b4a5968778695a4b3c2d1e0f1a      streams=8 viewers=0

A client sends its key as the single key is sent (header `x-livetranslate-key`); Triton
forwards the header to `pipeline` and `sessions`, which tell the clients apart by it. Each
client's live speaker streams and viewers stay within its own limits, below the server's
totals (`viewers=0`: none). With several servers on one store a client's quota holds across
them (livetranslate.store.redis_store.RedisQuota). The file holds secrets: it must be
readable by its owner only, like the single key's file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from livetranslate import settings

KEYS_FILE_ENV = "LIVETRANSLATE_KEYS_FILE"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_KEY_LENGTH = 16
DEFAULT_STREAMS, DEFAULT_VIEWERS = 2, 20
LIMITS = ("streams", "viewers")


class KeysError(ValueError):
    pass


@dataclass(frozen=True)
class Client:
    """One named client and its limits."""

    name: str
    max_streams: int = DEFAULT_STREAMS
    max_viewers: int = DEFAULT_VIEWERS


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Keys:
    """The clients of a keys file, found by the key they present (in constant time per key)."""

    def __init__(self, clients: dict[bytes, Client]):
        self._clients = clients

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def names(self) -> list[str]:
        return sorted(client.name for client in self._clients.values())

    def identify(self, presented: str) -> Client | None:
        """The client whose key this is, or None."""
        if not presented:
            return None
        digest, found = _digest(presented), None
        for known, client in self._clients.items():  # no early exit: the time tells nothing
            if hmac.compare_digest(digest, known):
                found = client
        return found

    @classmethod
    def parse(cls, text: str, source: str = "the keys file") -> Keys:
        clients: dict[bytes, Client] = {}
        names: set[str] = set()
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            where = f"{source}, line {number}"
            if len(words) < 2:
                raise KeysError(f"{where}: give a name and its key (then streams=N viewers=M if you like)")
            name, key, *limits = words
            if not NAME.fullmatch(name):
                raise KeysError(f"{where}: the name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
            if len(key) < MIN_KEY_LENGTH:
                raise KeysError(
                    f"{where}: the key of {name!r} is too short: use at least {MIN_KEY_LENGTH} "
                    f"characters (e.g. `python -c 'import secrets; print(secrets.token_hex(16))'`)"
                )
            if name in names:
                raise KeysError(f"{where}: {name!r} is named twice")
            if _digest(key) in clients:
                raise KeysError(f"{where}: {name!r} has the key of {clients[_digest(key)].name!r}: give each its own")
            values = {"streams": DEFAULT_STREAMS, "viewers": DEFAULT_VIEWERS}
            for limit in limits:
                field, _, value = limit.partition("=")
                if field not in LIMITS or not value.isdigit():
                    raise KeysError(f"{where}: {limit!r}: limits are streams=N and viewers=N (whole numbers)")
                values[field] = int(value)
            names.add(name)
            clients[_digest(key)] = Client(name, values["streams"], values["viewers"])
        if not clients:
            raise KeysError(f"{source} names no client: one line per client, `name key`")
        return cls(clients)

    @classmethod
    def from_environment(cls) -> Keys | None:
        """The keys file the launcher names (ServerOptions.keys_file), or None: no named keys."""
        path = settings.get(KEYS_FILE_ENV)
        return cls.load(path) if path else None

    @classmethod
    def load(cls, path: str | Path) -> Keys:
        path = Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeysError(f"cannot read the keys file {path}: {exc.strerror or exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeysError(f"the keys file {path} is readable by others: `chmod 600 {path}`")
        return cls.parse(text, str(path))
