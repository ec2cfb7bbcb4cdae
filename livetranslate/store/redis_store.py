"""The session store in Redis, shared by every replica of the server (`--store redis://...`).

Keys (all under one prefix, `lt:` unless the URL says `?prefix=`):

    <p>index            sorted set: session name -> started_at (the session list)
    <p>meta:<name>      hash: languages, times, state, glossary, next segment id, counts (c:<kind>)
    <p>events:<name>    stream: one entry per stored event ({"u": append id, "e": event JSON})
    <p>lease:<name>     the replica holding the session's speaker: its token, with a time to live
    <p>live             set: sessions that are live (checked by every replica's reaper)

One replica at a time serves a session's speaker: it holds the lease, renews it while the
stream lives and releases it at the end. Every append checks the lease (a fence), so a
replica that lost it (it stalled, the session was ended under it) stops its stream instead
of writing into a session another replica now serves. A replica that dies stops renewing;
once the lease has run out, any replica's reaper stores the session's `end` (with the
reason) and its viewers are told. A draining replica hands its sessions over: the lease
becomes a marker that any replica may take at once, and the session stays live until the
client continues elsewhere, or the marker runs out and the reaper ends the session.

An append is one Lua script, atomic in Redis: fence, add the event, count it. Retried
after a lost connection, it is not stored twice (the script sees its own id on the
stream's last entry). Viewers read a session's history from its stream and follow new
entries with XREAD, on whichever replica they are: one reader thread per followed session
and replica, offering each entry to the local viewers in order.

Stored before sent holds as far as Redis's persistence does: Redis acknowledges a write
once it is in memory and in its append-only file; `appendonly yes` with `appendfsync
always` syncs that file before the answer, as the local store syncs its log. With
`everysec`, a power loss of the Redis machine may lose the last second.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
import urllib.parse
import uuid
from typing import Callable

from livetranslate.protocol import Event, EventKind
from livetranslate.store.fanout import Hub, Viewer
from livetranslate.store.files import SessionBusy, SessionInfo, StoreError, _event_from_dict

log = logging.getLogger("livetranslate.store")

LEASE_ENV = "LIVETRANSLATE_STORE_LEASE_S"
HANDOVER_ENV = "LIVETRANSLATE_STORE_HANDOVER_S"
DEFAULT_LEASE_S = 10.0  # a dead replica's sessions end this long after its last renewal
DEFAULT_HANDOVER_S = 30.0  # a drained session waits this long for its client to go on elsewhere
# Redis unreachable: a command is retried with backoff for about this long before the stream
# that needed it stops with an error (its audio waits meanwhile in the stream's bounded queue)
RETRY_S = 6.0
HANDED_OVER = "handover:"

# KEYS: events, meta, lease, index. ARGV: token, append id, event JSON, kind, next segment
# ("" for none), end_s, lease ms, languages JSON ("" when unchanged).
_APPEND = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('LEASE lost')
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'u' and fields[i + 1] == ARGV[2] then return last[1][1] end
  end
end
local id = redis.call('XADD', KEYS[1], '*', 'u', ARGV[2], 'e', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'c:' .. ARGV[4], 1)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'next_segment', ARGV[5]) end
if tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[2], 'last_end_s') or '0') then
  redis.call('HSET', KEYS[2], 'last_end_s', ARGV[6])
end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'languages', ARGV[8]) end
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return id
"""

# KEYS: lease, live, meta. ARGV: token, lease ms, name, meta fields JSON.
# Taken when free, held by this token already, or handed over; else its ms to live.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and string.sub(holder, 1, 9) ~= 'handover:' then
  return redis.call('PTTL', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', KEYS[3], k, v) end
redis.call('HDEL', KEYS[3], 'ended_at', 'handover')
return -3
"""

# KEYS: lease. ARGV: token, lease ms. 1 when renewed, 0 when no longer held.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease, live, meta. ARGV: token, name, ended_at. The session's last stream ended.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended_at', ARGV[3])
return 1
"""

# KEYS: lease, meta. ARGV: token, reason, handover ms.
_HANDOVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'handover:' .. ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], 'handover', ARGV[2])
return 1
"""

# KEYS: lease, live, meta, events. ARGV: name, ended_at, end event JSON builder input.
# A live session whose lease ran out: its `end`, once (whichever replica gets here first).
_REAP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
local why = redis.call('HGET', KEYS[3], 'handover')
local event = cjson.decode(ARGV[3])
if why then
  event['error'] = ARGV[4] .. why
end
event['end_s'] = tonumber(redis.call('HGET', KEYS[3], 'last_end_s') or '0')
redis.call('XADD', KEYS[4], '*', 'u', ARGV[5], 'e', cjson.encode(event))
redis.call('HINCRBY', KEYS[3], 'c:end', 1)
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended_at', ARGV[2])
redis.call('HDEL', KEYS[3], 'handover')
return 1
"""

REAPED = ("the server serving the speaker stopped (it has not renewed the session's lease "
          "for {lease:.0f} s); the speaker may reconnect and continue")
NOT_CONTINUED = "the speaker's server shut down and the speaker did not continue on another: "


# a client's quota (livetranslate.keys) across servers: each server counts its own streams (or
# viewers) of the client in a key of its own, renewed with its leases, so that a dead server's
# count runs out; a set lists the servers counting. KEYS[1]: that set; ARGV: the count keys'
# prefix, this server's token, the most, the count key's time to live (ms)
_QUOTA_TAKE = """
local total = 0
for _, token in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local count = redis.call('GET', ARGV[1] .. token)
  if count then total = total + tonumber(count) else redis.call('SREM', KEYS[1], token) end
end
if total >= tonumber(ARGV[3]) then return 0 end
local mine = ARGV[1] .. ARGV[2]
redis.call('INCR', mine)
redis.call('PEXPIRE', mine, ARGV[4])
redis.call('SADD', KEYS[1], ARGV[2])
return 1
"""
_QUOTA_GIVE_BACK = """
local mine = ARGV[1] .. ARGV[2]
if redis.call('DECR', mine) <= 0 then
  redis.call('DEL', mine)
  redis.call('SREM', KEYS[1], ARGV[2])
end
return 1
"""
_QUOTA_COUNT = """
local total = 0
for _, token in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  total = total + tonumber(redis.call('GET', ARGV[1] .. token) or '0')
end
return total
"""


class RedisQuota:
    """Each client's live streams and viewers over every server on one Redis
    (livetranslate.pipeline.guards.Quota)."""

    def __init__(self, store: "RedisSessionStore"):
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
        taken = self.store._call("counting a client's quota", self._take, keys=[servers],
                                 args=[prefix, self.store.token, most, self._ttl_ms()])
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
            self.store._call("counting a client's quota", self._give_back, keys=[servers],
                             args=[prefix, self.store.token])
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


def _retries(seconds: float) -> int:
    """How many tries of the backoff (0.1, 0.2, 0.4, 0.8, then 1 s) fill about `seconds`."""
    waited, n = 0.0, 0
    while waited < seconds:
        n += 1
        waited += min(1.0, 0.05 * 2 ** n)
    return max(1, n)


def _stream_id(entry_id) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _str(value) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


class RedisSessionStore:
    """The SessionStore interface, in Redis. `serving`: this is the pipeline's store (it
    takes leases, renews them and reaps dead replicas' sessions); readers pass False."""

    shared = True  # several servers use it: a draining one hands its sessions over

    def __init__(self, url: str, hub: Hub | None = None, *, serving: bool = False,
                 lease_s: float | None = None, handover_s: float | None = None, retry_s: float = RETRY_S,
                 clock: Callable[[], float] = time.time):
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["lt:"])[0]
        plain = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname or "", query=""))  # for messages
        self.hub = hub
        self.lease_s = float(lease_s or os.environ.get(LEASE_ENV) or DEFAULT_LEASE_S)
        self.handover_s = float(handover_s or os.environ.get(HANDOVER_ENV) or DEFAULT_HANDOVER_S)
        self._clock = clock
        self._redis = redis.Redis.from_url(
            plain, socket_timeout=5.0, socket_connect_timeout=2.0, health_check_interval=15,
            # a refused connection is an OSError until redis-py wraps it: retried too
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=_retries(retry_s),
                        supported_errors=(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)))
        self._errors = redis.exceptions.RedisError
        try:
            self._redis.ping()
        except self._errors as exc:
            raise StoreError(f"cannot reach the session store at {self.url}: {exc}") from exc
        self._append = self._redis.register_script(_APPEND)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._handover = self._redis.register_script(_HANDOVER)
        self._reap = self._redis.register_script(_REAP)
        self.token = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._live: dict[str, int] = {}  # session -> this replica's open streams of it
        self._handed: set[str] = set()  # sessions handed over while a stream still closes
        self._languages: dict[str, list[str]] = {}
        self._followers: dict[str, _Follower] = {}
        self._published: set[str] = set()  # sessions this server's viewers read in languages of their own
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._quota: RedisQuota | None = None
        if serving:
            self._warn_about_persistence()
            for target, name in ((self._renew_all, "store-lease"), (self._reaper, "store-reaper")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    # keys
    def _k(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}:{name}" if name else f"{self.prefix}{kind}"

    def _call(self, what: str, fn, *args, **kw):
        """A Redis call; StoreError (naming what failed) when Redis stays unreachable."""
        try:
            return fn(*args, **kw)
        except StoreError:
            raise
        except self._errors as exc:
            if "LEASE lost" in str(exc):
                raise StoreError(f"{what}: another server now serves this session (this one lost its lease)") from exc
            raise StoreError(f"session store at {self.url} unreachable while {what}: {exc}") from exc

    def _warn_about_persistence(self) -> None:
        try:
            config = self._redis.config_get("append*")
        except self._errors:
            return  # CONFIG is often disabled on managed Redis: its settings are its operator's
        if config.get("appendonly") != "yes" or config.get("appendfsync") != "always":
            log.warning("the Redis session store runs with appendonly=%s appendfsync=%s: an event is acknowledged "
                        "before it is on disk (appendonly yes, appendfsync always makes it durable)",
                        config.get("appendonly"), config.get("appendfsync"))

    # the writer side
    def open(self, session: str, source_language: str, target_language: str,
             glossary: list[dict] | None = None) -> SessionInfo:
        with self._lock:
            if self._live.get(session):  # another stream of it on this replica: the lease is ours
                self._live[session] += 1
                self._handed.discard(session)
                return self.info(session)
            existing = self.info(session)
            started = existing.started_at if existing else self._clock()
            fields = {"name": session, "source_language": source_language, "target_language": target_language,
                      "started_at": repr(started), "state": "live",
                      "glossary": json.dumps(list(glossary or []), ensure_ascii=False)}
            answer = self._call(f"starting session {session!r}", self._acquire,
                                keys=[self._k("lease", session), self._k("live"), self._k("meta", session)],
                                args=[self.token, int(self.lease_s * 1000), session,
                                      json.dumps(fields, ensure_ascii=False)])
            if answer != -3:
                raise SessionBusy(f"session {session!r} is live on another server (its speaker streams there; "
                                  f"if that server died, the session is freed within {max(answer, 0) / 1000:.0f} s)")
            self._call("indexing", self._redis.zadd, self._k("index"), {session: started}, nx=True)
            self._live[session] = 1
            self._handed.discard(session)
            self._languages[session] = list(existing.languages) if existing else []
            return SessionInfo(session, source_language, target_language, started,
                               counts=dict(existing.counts) if existing else {},
                               languages=list(self._languages[session]), glossary=list(glossary or []))

    def resume_point(self, session: str) -> tuple[int, float]:
        meta = self._call("reading", self._redis.hmget, self._k("meta", session), "next_segment", "last_end_s")
        return int(meta[0] or 0), float(meta[1] or 0.0)

    def live_streams(self, session: str) -> int:
        with self._lock:
            return self._live.get(session, 0)

    def append(self, session: str, event: Event) -> None:
        """Stored (acknowledged by Redis) before it returns; StoreError when Redis stays
        unreachable, or this replica lost the session's lease."""
        languages = ""
        with self._lock:
            known = self._languages.setdefault(session, [])
            if event.kind == EventKind.TRANSLATION and event.language and event.language not in known:
                known.append(event.language)
                languages = json.dumps(known)
        data = json.dumps(event.to_dict(), ensure_ascii=False)
        next_segment = str(event.segment_id + 1) if event.kind == EventKind.TRANSCRIPT else ""
        self._call(f"storing session {session!r}", self._append,
                   keys=[self._k("events", session), self._k("meta", session), self._k("lease", session)],
                   args=[self.token, uuid.uuid4().hex, data, event.kind.value, next_segment, repr(event.end_s),
                         int(self.lease_s * 1000), languages])

    def handover(self, session: str, reason: str) -> None:
        """This replica drains: the session stays live, for its client to continue on
        another replica within `handover_s`."""
        with self._lock:
            self._handed.add(session)
        self._call("handing over", self._handover, keys=[self._k("lease", session), self._k("meta", session)],
                   args=[self.token, reason, int(self.handover_s * 1000)])

    def close(self, session: str) -> bool:
        with self._lock:
            if self._live.get(session, 0) > 1:
                self._live[session] -= 1
                return False
            self._live.pop(session, None)
            self._languages.pop(session, None)
            if session in self._handed:
                self._handed.discard(session)
                return True
        self._call(f"ending session {session!r}", self._release,
                   keys=[self._k("lease", session), self._k("live"), self._k("meta", session)],
                   args=[self.token, session, repr(self._clock())])
        return True

    def sync_info(self, session: str) -> None:
        """Counts are kept by each append."""

    def recover(self) -> list[str]:
        """Sessions whose server died: ended now if their lease has run out (the reaper
        goes on doing this while the server runs)."""
        return self.reap()

    def reap(self) -> list[str]:
        ended = []
        names = [_str(raw) for raw in self._call("reading", self._redis.smembers, self._k("live"))]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._k("lease", name))
        held = self._call("reading", pipe.execute) if names else []
        for name, leased in zip(names, held):
            if leased:
                continue
            end = Event(EventKind.END, error=REAPED.format(lease=self.lease_s)).to_dict()
            done = self._call("ending", self._reap,
                              keys=[self._k("lease", name), self._k("live"), self._k("meta", name),
                                    self._k("events", name)],
                              args=[name, repr(self._clock()), json.dumps(end), NOT_CONTINUED, uuid.uuid4().hex])
            if done:
                log.warning("session %s: ended, its server stopped serving it", name)
                ended.append(name)
        return ended

    # the languages viewers on each server read: the speaker's server translates into all of them
    def publish_languages(self, session: str, languages: set[str]) -> None:
        """This server's viewers of `session` read `languages` (kept while this server renews
        them: a dead server's viewers stop counting after 3 leases)."""
        mine, servers = self._k("vlang", f"{session}\0{self.token}"), self._k("vlangs", session)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(mine)
        if languages:
            pipe.sadd(mine, *sorted(languages))
            pipe.pexpire(mine, int(self.lease_s * 3000))
            pipe.sadd(servers, self.token)
        else:
            pipe.srem(servers, self.token)
        self._call("sharing viewer languages", pipe.execute)
        with self._lock:
            (self._published.add if languages else self._published.discard)(session)

    def viewer_languages(self, session: str) -> set[str]:
        """The languages viewers on every server read (this one's included)."""
        tokens = [_str(t) for t in self._call("reading", self._redis.smembers, self._k("vlangs", session))]
        if not tokens:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        for token in tokens:
            pipe.smembers(self._k("vlang", f"{session}\0{token}"))
        found = self._call("reading", pipe.execute)
        gone = [t for t, langs in zip(tokens, found) if not langs]
        if gone:  # a server that stopped renewing: its viewers are gone
            self._call("cleaning", self._redis.srem, self._k("vlangs", session), *gone)
        return {_str(lang) for langs in found for lang in langs}

    def client_quota(self) -> RedisQuota:
        """Each named client's streams and viewers, counted over every server on this Redis."""
        with self._lock:
            if self._quota is None:
                self._quota = RedisQuota(self)
            return self._quota

    def _renew_all(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            if self._quota is not None:
                self._quota.renew()
            with self._lock:
                published = list(self._published)
            for session in published:
                try:
                    self._redis.pexpire(self._k("vlang", f"{session}\0{self.token}"), int(self.lease_s * 3000))
                except self._errors as exc:
                    log.warning("session %s: renewing its viewers' languages failed: %s", session, exc)
            with self._lock:
                held = [s for s in self._live if s not in self._handed]
            for session in held:
                try:
                    if not self._renew(keys=[self._k("lease", session)], args=[self.token, int(self.lease_s * 1000)]):
                        log.error("session %s: this server lost its lease (the next event fails)", session)
                except self._errors as exc:
                    log.warning("session %s: renewing its lease failed: %s", session, exc)

    def _reaper(self) -> None:
        while not self._stop.wait(max(0.5, self.lease_s / 4)):
            try:
                self.reap()
            except StoreError as exc:
                log.warning("reaping sessions: %s", exc)

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            followers, self._followers = list(self._followers.values()), {}
        for follower in followers:
            follower.stop()
        for thread in self._threads + [f._thread for f in followers]:
            thread.join(2.0)  # out of their blocking reads before the connections close
        self._redis.close()

    # the reader side
    def info(self, session: str) -> SessionInfo | None:
        meta = self._call("reading", self._redis.hgetall, self._k("meta", session))
        return _info(session, meta) if meta else None

    def events(self, session: str) -> list[Event]:
        return [event for _, event in self._entries(session, "-")]

    def _entries(self, session: str, after: str) -> list[tuple[tuple[int, int], Event]]:
        out, start = [], after
        while True:  # in pages: a long session's history is not one reply
            rows = self._call("reading", self._redis.xrange, self._k("events", session),
                              min=start if start == "-" else f"({start}", count=2000)
            for entry_id, fields in rows:
                event = _decode(fields)
                if event is not None:
                    out.append((_stream_id(entry_id), event))
            if len(rows) < 2000:
                return out
            start = _str(rows[-1][0])

    def ended_with(self, session: str) -> Event | None:
        """The session's last `end` when it has ended, else None (cheap: a viewer asks often)."""
        state = self._call("reading", self._redis.hget, self._k("meta", session), "state")
        if state is None or _str(state) != "ended":
            return None
        rows = self._call("reading", self._redis.xrevrange, self._k("events", session), count=20)
        for _, fields in rows:
            event = _decode(fields)
            if event is not None and event.kind == EventKind.END:
                return event
        return Event(EventKind.END)

    def attach(self, session: str, viewer: Viewer) -> list[Event]:
        """Subscribes a viewer on this replica; returns the history. Live events come from
        the session's reader thread, which started before the history was read: what it
        offers up to the history's end, the viewer skips."""
        with self._lock:
            follower = self._followers.get(session)
            if follower is None or not follower.alive:
                follower = self._followers[session] = _Follower(self, session)
            follower.viewers.add(viewer)
        viewer.hold()
        self.hub.subscribe(session, viewer)
        history = self._entries(session, "-")
        viewer.settle(history[-1][0] if history else (0, 0))
        return [event for _, event in history]

    def detach(self, session: str, viewer: Viewer) -> None:
        self.hub.unsubscribe(session, viewer)
        with self._lock:
            follower = self._followers.get(session)
            if follower is not None and viewer in follower.viewers:
                follower.viewers.discard(viewer)
                if not follower.viewers:
                    del self._followers[session]
                    follower.stop()

    def sessions(self) -> list[SessionInfo]:
        names = [_str(n) for n in self._call("reading", self._redis.zrevrange, self._k("index"), 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._k("meta", name))
            pipe.memory_usage(self._k("events", name))
        answers = self._call("reading", pipe.execute)
        infos = []
        for name, meta, size in zip(names, answers[0::2], answers[1::2]):
            if meta:
                info = _info(name, meta)
                info.size_bytes = int(size or 0)
                infos.append(info)
        return infos

    def prune(self, max_age_s: float | None = None, max_total_bytes: int | None = None,
              dry_run: bool = False) -> list[SessionInfo]:
        """Removes ended sessions older than `max_age_s`, oldest first; never live ones.
        (A size bound is Redis's own: its maxmemory.)"""
        if max_age_s is None:
            return []
        now = self._clock()
        old = sorted((i for i in self.sessions() if i.state == "ended" and now - i.last_active > max_age_s),
                     key=lambda i: i.last_active)
        for info in old if not dry_run else ():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._k("meta", info.name), self._k("events", info.name))
            pipe.zrem(self._k("index"), info.name)
            self._call("removing", pipe.execute)
        return old


class _Follower:
    """Reads one session's new stream entries and offers them to this replica's viewers."""

    def __init__(self, store: RedisSessionStore, session: str):
        self.store, self.session = store, session
        self.viewers: set[Viewer] = set()
        self._stop = threading.Event()
        last = store._call("reading", store._redis.xrevrange, store._k("events", session), count=1)
        self._last = _str(last[0][0]) if last else "0-0"
        self._thread = threading.Thread(target=self._run, name=f"follow-{session[:20]}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        key = self.store._k("events", self.session)
        while not self._stop.is_set():
            try:
                answer = self.store._redis.xread({key: self._last}, count=500, block=1000)
            except Exception as exc:  # Redis away (retried), or its connections closed at shutdown
                if not self._stop.is_set():
                    log.warning("following session %s: %s", self.session, exc)
                    self._stop.wait(0.5)
                continue
            for _, rows in answer or ():
                for entry_id, fields in rows:
                    self._last = _str(entry_id)
                    event = _decode(fields)
                    if event is not None:
                        self.store.hub.publish(self.session, event, _stream_id(entry_id))


def _decode(fields: dict) -> Event | None:
    try:
        return _event_from_dict(json.loads(_str(fields.get(b"e", fields.get("e")))))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _info(name: str, meta: dict) -> SessionInfo:
    m = {_str(k): _str(v) for k, v in meta.items()}

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
    return SessionInfo(name, m.get("source_language", ""), m.get("target_language", ""),
                       number("started_at", 0.0), number("ended_at"), m.get("state", "live"), counts,
                       languages=listed("languages"), glossary=listed("glossary"))
