"""A client's quota (livetranslate.keys) counted in Redis, across servers."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from livetranslate.store.files import StoreError
from livetranslate.store.redis_common import log, lua

if TYPE_CHECKING:
    from livetranslate.store.redis_store import RedisSessionStore


_QUOTA_TAKE = lua("quota_take")
_QUOTA_GIVE_BACK = lua("quota_give_back")
_QUOTA_COUNT = lua("quota_count")


class RedisQuota:
    """Each client's live streams and viewers over every server on one Redis
    (livetranslate.pipeline.guards.Quota)."""

    def __init__(self, store: RedisSessionStore):
        self.store = store
        redis = store._redis
        self._take, self._give_back = redis.register_script(_QUOTA_TAKE), redis.register_script(_QUOTA_GIVE_BACK)
        self._count = redis.register_script(_QUOTA_COUNT)
        self._lock = threading.Lock()
        self._held: collections.Counter[tuple[str, str]] = collections.Counter()  # this server's own

    def _keys(self, kind: str, client: str) -> tuple[str, str]:
        return self.store._k("quota", f"{kind}\0{client}"), self.store._k("quotac", f"{kind}\0{client}\0")

    def _ttl_ms(self) -> int:
        return int(self.store.lease_s * 3000)

    def take(self, kind: str, client: str, most: int) -> bool:
        servers, prefix = self._keys(kind, client)
        taken = self.store._call(
            "counting a client's quota",
            self._take,
            keys=[servers],
            args=[prefix, self.store.token, most, self._ttl_ms()],
        )
        if taken:
            with self._lock:
                self._held[kind, client] += 1
        return bool(taken)

    def give_back(self, kind: str, client: str) -> None:
        with self._lock:
            if self._held[kind, client] <= 0:
                return
            self._held[kind, client] -= 1
            if not self._held[kind, client]:
                del self._held[kind, client]
        servers, prefix = self._keys(kind, client)
        try:
            self.store._call(
                "counting a client's quota", self._give_back, keys=[servers], args=[prefix, self.store.token]
            )
        except StoreError as exc:  # this server's count runs out with its leases
            log.warning("client %s: giving back a %s of its quota failed: %s", client, kind, exc)

    def count(self, kind: str, client: str) -> int:
        servers, prefix = self._keys(kind, client)
        return int(self.store._call("counting a client's quota", self._count, keys=[servers], args=[prefix]))

    def renew(self) -> None:
        """This server's counts live on (a dead server's run out after 3 leases)."""
        with self._lock:
            held = [key for key, n in self._held.items() if n > 0]
        for kind, client in held:
            servers, prefix = self._keys(kind, client)
            try:
                self.store._redis.pexpire(prefix + self.store.token, self._ttl_ms())
            except self.store._errors as exc:
                log.warning("client %s: renewing its quota failed: %s", client, exc)
