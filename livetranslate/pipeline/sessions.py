"""A stream's part in its session: segment ids shared with the session's other streams, the
languages its viewers asked for, and the stored event log (an event is stored before it is
sent; a store failure stops the stream)."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import cast

from livetranslate.pipeline.guards import ServerFull
from livetranslate.pipeline.metrics import NO_METRICS, Metrics
from livetranslate.pipeline.replies import Reply
from livetranslate.protocol import INTERIM_KINDS, Event, EventKind
from livetranslate.store.interface import SharedStore, Store

log = logging.getLogger("livetranslate.pipeline")


class SegmentIds:
    """Segment ids of each live session, shared by its streams: two streams of one session
    (a client reconnecting while its old stream still drains) never give out the same id."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next: dict[str, list[int]] = {}  # session -> [next id, streams holding it]

    def open(self, session: str, base: int) -> None:
        with self._lock:
            entry = self._next.setdefault(session, [base, 0])
            entry[0], entry[1] = max(entry[0], base), entry[1] + 1

    def close(self, session: str) -> None:
        with self._lock:
            entry = self._next.get(session)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._next[session]

    def peek(self, session: str) -> int:
        with self._lock:
            entry = self._next.get(session)
            return entry[0] if entry else -1

    def take(self, session: str) -> int:
        with self._lock:
            entry = self._next[session]
            entry[0] += 1
            return entry[0] - 1


class ViewerLanguages:
    """The languages each session's viewers asked for, with how many viewers ask: the
    session's live streams translate each transcript into each of them once, however many
    viewers share a language, and stop when the last viewer of one leaves. With a store
    shared by several servers (`shared`: publish_languages / viewer_languages), the
    languages of viewers on the other servers count too: the speaker's server translates
    for them."""

    def __init__(self, most: int = 4, shared=None):
        self.most = most  # languages besides the speaker's, per session
        self.shared = shared
        self._lock = threading.Lock()
        self._viewers: dict[str, collections.Counter[str]] = {}  # session -> language -> viewers
        # (session, language) -> the segments someone here translates or translated into it:
        # a live stream and a late viewer's catching up never both translate one line
        self._claimed: dict[tuple[str, str], set[int]] = {}

    def join(self, session: str, language: str, speakers: str = "") -> None:
        """A viewer of `language`; ServerFull when the session's viewers read `most` other
        languages than the speaker's (`speakers`) already."""
        elsewhere = self._elsewhere(session)
        with self._lock:
            counts = self._viewers.setdefault(session, collections.Counter())
            others = (set(counts) | elsewhere) - {speakers}
            if (
                language not in counts
                and language not in elsewhere
                and language != speakers
                and len(others) >= self.most
            ):
                if not counts:
                    del self._viewers[session]
                raise ServerFull(
                    f"session {session!r} is already read in {self.most} language(s) besides the "
                    f"speaker's ({', '.join(sorted(others))}), the most one session takes: read one "
                    f"of those"
                )
            counts[language] += 1
            mine = set(counts)
        self._publish(session, mine)

    def leave(self, session: str, language: str) -> None:
        with self._lock:
            counts = self._viewers.get(session)
            if counts is None:
                return
            counts[language] -= 1
            if counts[language] <= 0:
                del counts[language]
                self._claimed.pop((session, language), None)
            if not counts:
                del self._viewers[session]
            mine = set(counts)
        self._publish(session, mine)

    def claim(self, session: str, language: str, segment_id: int) -> bool:
        """True for the first to claim translating `segment_id` into `language` (while that
        language has viewers here; once they all left, claims start again)."""
        with self._lock:
            claimed = self._claimed.setdefault((session, language), set())
            if segment_id in claimed:
                return False
            claimed.add(segment_id)
            return True

    def of(self, session: str) -> frozenset[str]:
        with self._lock:
            mine = set(self._viewers.get(session, ()))
        return frozenset(mine | self._elsewhere(session))

    def _publish(self, session: str, languages: set[str]) -> None:
        if self.shared is not None:
            try:
                self.shared.publish_languages(session, languages)
            except Exception as exc:  # the store is away: this server's viewers still get theirs
                log.warning("session %s: sharing its viewers' languages failed: %s", session, exc)

    def _elsewhere(self, session: str) -> set[str]:
        if self.shared is None:
            return set()
        try:
            return self.shared.viewer_languages(session)
        except Exception as exc:
            log.warning("session %s: reading other servers' viewer languages failed: %s", session, exc)
            return set()


class SessionKeeper:
    """Ends streams' parts in their sessions. A close the store could not write (a full disk)
    is tried again with each request until it is, so no session stays `live`."""

    def __init__(self, store: Store, metrics: Metrics = NO_METRICS):
        self.store, self.metrics = store, metrics
        self._unclosed: set[str] = set()
        self._lock = threading.Lock()

    def open(
        self, name: str, source_language: str, target_language: str, glossary: list[dict] | None = None
    ) -> SessionHandle:
        self.store.open(name, source_language, target_language, glossary)
        return SessionHandle(self, name)

    def close(self, name: str) -> None:
        try:
            self.store.close(name)
        except Exception as exc:
            log.error("session %s: closing it failed (tried again later): %s", name, exc)
            with self._lock:
                self._unclosed.add(name)

    def retry(self) -> None:
        if not self._unclosed:
            return
        with self._lock:
            names, self._unclosed = self._unclosed, set()
        for name in names:
            if self.store.live_streams(name) == 0:
                self.close(name)


class SessionHandle:
    """One stream's hold on its stored session: taken when the stream starts, let go once
    when it closes."""

    def __init__(self, keeper: SessionKeeper, name: str):
        self.keeper, self.name = keeper, name
        self.store = keeper.store
        self._released = False
        self._lock = threading.Lock()

    def record(self, event: Event) -> None:
        with self.keeper.metrics.storing(event.kind):
            self.store.append(self.name, event)
        if event.kind == EventKind.TRANSCRIPT:
            self.store.sync_info(self.name)  # counts for `sessions list`

    def preview(self, event: Event) -> None:
        """An event for the live viewers only (the interim text): not stored, not replayed."""
        if self.store.hub is not None:
            self.store.hub.publish(self.name, event)

    def release(self, abandoned: str, end_s: float, move_on: bool = False) -> None:
        """The stream is over (once; later calls do nothing). One abandoned (no `end` from its
        client) stores an `end` that tells the viewers why, unless another stream (the
        client, reconnected) goes on. One that moves on (its server drains) is handed over
        instead when the store is shared by several servers: the session stays live for its
        client to go on elsewhere, and is ended by the store if it does not."""
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            if abandoned and move_on and self.store.shared:
                cast(SharedStore, self.store).handover(self.name, abandoned)
            elif abandoned and self.store.live_streams(self.name) <= 1:
                with self.keeper.metrics.storing(EventKind.END):
                    self.store.append(self.name, Event(EventKind.END, end_s=end_s, error=abandoned))
        except Exception as exc:
            log.error("session %s: storing its end failed: %s", self.name, exc)
        finally:
            self.keeper.close(self.name)


class RecordingReply:
    """Stores each event of a session before sending it. When the store fails (a full disk),
    the stream is stopped with an `end` that says why: nothing unstored is sent, and the
    stream's workers end."""

    def __init__(self, reply: Reply, session: SessionHandle, failure: Callable[[], str], fail: Callable[[str], None]):
        self._reply, self._session, self._failure, self._fail = reply, session, failure, fail

    def send(self, event: Event) -> None:
        if event.kind in INTERIM_KINDS:  # the speaker and live viewers see it, never stored
            self._session.preview(event)
            self._reply.send(event)
            return
        if self._failure():
            return  # the stream was stopped: its `end` went out already
        try:
            self._session.record(event)
        except Exception as exc:
            log.error("session %s: storing an event failed: %s", self._session.name, exc)
            reason = f"the session could not be stored ({exc}); the stream was stopped"
            self._fail(reason)
            self._reply.send(Event(EventKind.END, end_s=event.end_s, error=reason))
            return
        if event.kind == EventKind.END:  # stored: the session is over before its speaker hears so
            self._session.release("", event.end_s)
        self._reply.send(event)

    def close(self) -> None:
        self._reply.close()
