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
`everysec`, a power loss of the Redis machine may lose the last second."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from livetranslate import settings
from livetranslate.protocol import Event, EventKind
from livetranslate.store.fanout import Hub
from livetranslate.store.files import SessionBusy, SessionInfo, StoreError
from livetranslate.store.redis_annotate import RedisAnnotating
from livetranslate.store.redis_common import (
    HANDOVER_ENV,
    LEASE_ENV,
    RETRY_S,
    as_text,
    log,
    lua,
    retries,
)
from livetranslate.store.redis_quota import RedisQuota
from livetranslate.store.redis_read import Follower, RedisReading

_APPEND = lua("append")
_ACQUIRE = lua("acquire")
_RENEW = lua("renew")
_RELEASE = lua("release")
_HANDOVER = lua("handover")
_REAP = lua("reap")


REAPED = (
    "the server serving the speaker stopped (it has not renewed the session's lease "
    "for {lease:.0f} s); the speaker may reconnect and continue"
)


NOT_CONTINUED = "the speaker's server shut down and the speaker did not continue on another: "


class RedisSessionStore(RedisAnnotating, RedisReading):
    """The SessionStore interface, in Redis. `serving`: this is the pipeline's store (it
    takes leases, renews them and reaps dead replicas' sessions); readers pass False."""

    shared = True  # several servers use it: a draining one hands its sessions over
    keeps = True

    def __init__(
        self,
        url: str,
        hub: Hub | None = None,
        *,
        serving: bool = False,
        lease_s: float | None = None,
        handover_s: float | None = None,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.time,
    ):
        # One piece: the connection, the scripts, the persistence check and the renewal and reaper
        # threads are set up in the order they depend on each other.
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["lt:"])[0]
        plain = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname or "", query=""))  # for messages
        self.hub = hub
        self.lease_s = float(lease_s or settings.get(LEASE_ENV))
        self.handover_s = float(handover_s or settings.get(HANDOVER_ENV))
        self._clock = clock
        self._redis: Any = redis.Redis.from_url(
            plain,
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            health_check_interval=15,
            # a refused connection is an OSError until redis-py wraps it: retried too
            retry=Retry(
                ExponentialBackoff(cap=1.0, base=0.05),
                retries=retries(retry_s),
                supported_errors=(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError),
            ),
        )
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
        self._followers: dict[str, Follower] = {}
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
            log.warning(
                "the Redis session store runs with appendonly=%s appendfsync=%s: an event is acknowledged "
                "before it is on disk (appendonly yes, appendfsync always makes it durable)",
                config.get("appendonly"),
                config.get("appendfsync"),
            )

    # the writer side
    def open(
        self, session: str, source_language: str, target_language: str, glossary: list[dict] | None = None
    ) -> SessionInfo:
        with self._lock:
            if self._live.get(session):  # another stream of it on this replica: the lease is ours
                self._live[session] += 1
                self._handed.discard(session)
                # its first stream stored the metadata; a bare one if it was removed meanwhile
                return self.info(session) or SessionInfo(session, source_language, target_language)
            existing = self.info(session)
            started = existing.started_at if existing else self._clock()
            fields = {
                "name": session,
                "source_language": source_language,
                "target_language": target_language,
                "started_at": repr(started),
                "state": "live",
                "glossary": json.dumps(list(glossary or []), ensure_ascii=False),
            }
            answer = self._call(
                f"starting session {session!r}",
                self._acquire,
                keys=[self._k("lease", session), self._k("live"), self._k("meta", session)],
                args=[self.token, int(self.lease_s * 1000), session, json.dumps(fields, ensure_ascii=False)],
            )
            if answer != -3:
                raise SessionBusy(
                    f"session {session!r} is live on another server (its speaker streams there; "
                    f"if that server died, the session is freed within {max(answer, 0) / 1000:.0f} s)"
                )
            self._call("indexing", self._redis.zadd, self._k("index"), {session: started}, nx=True)
            self._live[session] = 1
            self._handed.discard(session)
            self._languages[session] = list(existing.languages) if existing else []
            return SessionInfo(
                session,
                source_language,
                target_language,
                started,
                counts=dict(existing.counts) if existing else {},
                languages=list(self._languages[session]),
                glossary=list(glossary or []),
            )

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
        self._call(
            f"storing session {session!r}",
            self._append,
            keys=[self._k("events", session), self._k("meta", session), self._k("lease", session)],
            args=[
                self.token,
                uuid.uuid4().hex,
                data,
                event.kind.value,
                next_segment,
                repr(event.end_s),
                int(self.lease_s * 1000),
                languages,
            ],
        )

    def handover(self, session: str, reason: str) -> None:
        """This replica drains: the session stays live, for its client to continue on
        another replica within `handover_s`."""
        with self._lock:
            self._handed.add(session)
        self._call(
            "handing over",
            self._handover,
            keys=[self._k("lease", session), self._k("meta", session)],
            args=[self.token, reason, int(self.handover_s * 1000)],
        )

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
        self._call(
            f"ending session {session!r}",
            self._release,
            keys=[self._k("lease", session), self._k("live"), self._k("meta", session)],
            args=[self.token, session, repr(self._clock())],
        )
        return True

    def sync_info(self, session: str) -> None:
        """Counts are kept by each append."""

    def recover(self) -> list[str]:
        """Sessions whose server died: ended now if their lease has run out (the reaper
        goes on doing this while the server runs)."""
        return self.reap()

    def reap(self) -> list[str]:
        ended = []
        names = [as_text(raw) for raw in self._call("reading", self._redis.smembers, self._k("live"))]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._k("lease", name))
        held = self._call("reading", pipe.execute) if names else []
        for name, leased in zip(names, held):
            if leased:
                continue
            end = Event(EventKind.END, error=REAPED.format(lease=self.lease_s)).to_dict()
            done = self._call(
                "ending",
                self._reap,
                keys=[self._k("lease", name), self._k("live"), self._k("meta", name), self._k("events", name)],
                args=[name, repr(self._clock()), json.dumps(end), NOT_CONTINUED, uuid.uuid4().hex],
            )
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
        tokens = [as_text(t) for t in self._call("reading", self._redis.smembers, self._k("vlangs", session))]
        if not tokens:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        for token in tokens:
            pipe.smembers(self._k("vlang", f"{session}\0{token}"))
        found = self._call("reading", pipe.execute)
        gone = [t for t, langs in zip(tokens, found) if not langs]
        if gone:  # a server that stopped renewing: its viewers are gone
            self._call("cleaning", self._redis.srem, self._k("vlangs", session), *gone)
        return {as_text(lang) for langs in found for lang in langs}

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
            if self._viewer_counts is not None:  # this server's viewers count on
                self._viewer_counts.write()
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
