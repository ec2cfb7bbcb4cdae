"""The Redis store's read side: a session's history, viewers following it (one reader thread
per followed session and replica, offering each entry to the local viewers in order), the
list of sessions and pruning."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from livetranslate.protocol import Event, EventKind
from livetranslate.store.fanout import Hub, Viewer
from livetranslate.store.files import SessionInfo, StoreError
from livetranslate.store.redis_common import as_text, decode, info_from, log, stream_id
from livetranslate.store.redis_viewers import RedisViewerCounts, read_viewer_counts

if TYPE_CHECKING:
    pass


class Follower:
    """Reads one session's new stream entries and offers them to this replica's viewers."""

    def __init__(self, store: RedisReading, session: str):
        self.store, self.session = store, session
        self.viewers: set[Viewer] = set()
        self._stop = threading.Event()
        last = store._call("reading", store._redis.xrevrange, store._k("events", session), count=1)
        self._last = as_text(last[0][0]) if last else "0-0"
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
                    self._last = as_text(entry_id)
                    event = decode(fields)
                    if event is not None:
                        self.store._hub().publish(self.session, event, stream_id(entry_id))


class RedisReading:
    """The read side of RedisSessionStore (its keys, connection and hub are the store's)."""

    # the store's, set by RedisSessionStore.__init__
    _redis: Any  # redis.Redis: its replies are typed for the async client too
    _lock: threading.Lock
    _followers: dict[str, Follower]
    _clock: Callable[[], float]
    _errors: Any  # redis.exceptions.RedisError
    hub: Hub | None
    token: str  # this server's, in Redis
    lease_s: float
    _viewer_counts: RedisViewerCounts | None = None  # this server's viewers, once it has had any

    def _k(self, kind: str, name: str = "") -> str:
        raise NotImplementedError  # RedisSessionStore's

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        raise NotImplementedError  # RedisSessionStore's

    def _hub(self) -> Hub:
        if self.hub is None:
            raise StoreError("this store was opened without a hub: it has no viewers")
        return self.hub

    # the reader side
    def info(self, session: str) -> SessionInfo | None:
        meta = self._call("reading", self._redis.hgetall, self._k("meta", session))
        return info_from(session, meta) if meta else None

    def events(self, session: str) -> list[Event]:
        return [event for _, event in self._entries(session, "-")]

    def _entries(self, session: str, after: str) -> list[tuple[tuple[int, int], Event]]:
        out, start = [], after
        while True:  # in pages: a long session's history is not one reply
            rows = self._call(
                "reading",
                self._redis.xrange,
                self._k("events", session),
                min=start if start == "-" else f"({start}",
                count=2000,
            )
            for entry_id, fields in rows:
                event = decode(fields)
                if event is not None:
                    out.append((stream_id(entry_id), event))
            if len(rows) < 2000:
                return out
            start = as_text(rows[-1][0])

    def ended_with(self, session: str) -> Event | None:
        """The session's last `end` when it has ended, else None (cheap: a viewer asks often)."""
        state = self._call("reading", self._redis.hget, self._k("meta", session), "state")
        if state is None or as_text(state) != "ended":
            return None
        rows = self._call("reading", self._redis.xrevrange, self._k("events", session), count=20)
        for _, fields in rows:
            event = decode(fields)
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
                follower = self._followers[session] = Follower(self, session)
            follower.viewers.add(viewer)
        viewer.hold()
        self._hub().subscribe(session, viewer)
        self._viewers_changed()
        history = self._entries(session, "-")
        viewer.settle(history[-1][0] if history else (0, 0))
        return [event for _, event in history]

    def detach(self, session: str, viewer: Viewer) -> None:
        self._hub().unsubscribe(session, viewer)
        self._viewers_changed()
        with self._lock:
            follower = self._followers.get(session)
            if follower is not None and viewer in follower.viewers:
                follower.viewers.discard(viewer)
                if not follower.viewers:
                    del self._followers[session]
                    follower.stop()

    def sessions(self) -> list[SessionInfo]:
        names = [as_text(n) for n in self._call("reading", self._redis.zrevrange, self._k("index"), 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._k("meta", name))
            pipe.memory_usage(self._k("events", name))
        answers = self._call("reading", pipe.execute)
        infos = []
        for name, meta, size in zip(names, answers[0::2], answers[1::2]):
            if meta:
                info = info_from(name, meta)
                info.size_bytes = int(size or 0)
                infos.append(info)
        watching = read_viewer_counts(self) if any(i.state == "live" for i in infos) else {}
        for info in infos:
            info.viewers = watching.get(info.name, 0) if info.state == "live" else 0
        return infos

    def _viewers_changed(self) -> None:
        """A viewer joined or left here: this server's counts in Redis say so."""
        with self._lock:
            if self._viewer_counts is None:
                self._viewer_counts = RedisViewerCounts(self)
            counts = self._viewer_counts
        counts.write()

    def prune(
        self, max_age_s: float | None = None, max_total_bytes: int | None = None, dry_run: bool = False
    ) -> list[SessionInfo]:
        """Removes ended sessions older than `max_age_s`, oldest first; never live ones.
        (A size bound is Redis's own: its maxmemory.)"""
        if max_age_s is None:
            return []
        now = self._clock()
        old = sorted(
            (i for i in self.sessions() if i.state == "ended" and now - i.last_active > max_age_s),
            key=lambda i: i.last_active,
        )
        for info in old if not dry_run else ():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._k("meta", info.name), self._k("events", info.name))
            pipe.zrem(self._k("index"), info.name)
            self._call("removing", pipe.execute)
        return old
