"""How many viewers follow each session now, over every server on one Redis (for
`livetranslate sessions`; the local store's: store/watching.py).

Each server keeps its own counts in `<p>viewers:<token>` (hash: session -> its viewers
there), rewritten whole when a viewer joins or leaves, and with each renewal of its leases;
it lives 3 leases, so a dead server's viewers stop counting. `<p>viewer-servers` lists the
servers that count. Counting is best effort: a count that cannot be written never fails a
viewer."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from livetranslate.store.files import StoreError
from livetranslate.store.redis_common import as_text, log

if TYPE_CHECKING:
    from livetranslate.store.redis_read import RedisReading


def _keys(store: RedisReading, token: str) -> tuple[str, str]:
    return store._k("viewers", token), store._k("viewer-servers")


class RedisViewerCounts:
    """This server's viewers of each session (its hub's), in Redis."""

    def __init__(self, store: RedisReading):
        self.store = store
        self._lock = threading.Lock()  # one write at a time, each with the newest counts
        self._shown = False  # its hash holds counts

    def write(self) -> None:
        """The counts now (after a viewer joined or left; and with each lease renewal)."""
        store = self.store
        counts = store.hub.counts() if store.hub is not None else {}
        mine, servers = _keys(store, store.token)
        with self._lock:
            if not counts and not self._shown:
                return
            pipe = store._redis.pipeline(transaction=True)
            pipe.delete(mine)
            if counts:
                pipe.hset(mine, mapping=counts)
                pipe.pexpire(mine, int(store.lease_s * 3000))
                pipe.sadd(servers, store.token)
            else:
                pipe.srem(servers, store.token)
            try:
                pipe.execute()
            except store._errors as exc:
                log.warning("writing this server's viewer counts failed: %s", exc)
                return
            self._shown = bool(counts)


def read_viewer_counts(store: RedisReading) -> dict[str, int]:
    """Viewers per session over every server on this Redis (StoreError when it is away)."""
    _, servers = _keys(store, "")
    tokens = [as_text(t) for t in store._call("reading", store._redis.smembers, servers)]
    if not tokens:
        return {}
    pipe = store._redis.pipeline(transaction=False)
    for token in tokens:
        pipe.hgetall(_keys(store, token)[0])
    found = store._call("reading", pipe.execute)
    gone = [t for t, counts in zip(tokens, found) if not counts]
    if gone:  # servers that stopped (or have no viewers): their entries go
        try:
            store._call("cleaning", store._redis.srem, servers, *gone)
        except StoreError as exc:
            log.warning("cleaning the viewer counts failed: %s", exc)
    total: dict[str, int] = {}
    for counts in found:
        for name, count in counts.items():
            text = as_text(count)
            if text.isdigit():
                total[as_text(name)] = total.get(as_text(name), 0) + int(text)
    return total
