"""Live events of each session to its viewers: a bounded queue per viewer."""

from __future__ import annotations

import collections
import threading

from livetranslate.protocol import Event, EventKind

# a viewer of one language gets these in its language only; corrections go to every viewer
# (in the spoken language they correct the transcript it reads too)
TRANSLATED = (EventKind.TRANSLATION, EventKind.PARTIAL_TRANSLATION, EventKind.ENHANCED, EventKind.SUMMARY)


class Viewer:
    """One subscriber's bounded queue. A viewer that falls `max_events` behind is dropped
    (told so), never the speaker. A viewer of one `language` gets the translations of that
    language only (and everything that is not a translation)."""

    def __init__(self, max_events: int = 500, language: str | None = None):
        self.queue: collections.deque[Event] = collections.deque()
        self.max_events = max_events
        self.language = language
        self.overflowed = False
        self.cond = threading.Condition()
        # a store that offers events with their place in the session (Redis): those up to
        # here were in the history the viewer got
        self.after: tuple[int, int] | None = None
        self._held: list | None = None  # while its history is read: what was offered meanwhile

    def wants(self, event: Event) -> bool:
        return self.language is None or event.kind not in TRANSLATED or event.language == self.language

    def hold(self) -> None:
        """Offers wait until settle(): the viewer's history is being read."""
        with self.cond:
            self._held = []

    def settle(self, after: tuple[int, int]) -> None:
        """The history went up to `after`: what was offered meanwhile and is newer, in order."""
        with self.cond:
            held, self._held, self.after = self._held or [], None, after
        for event, seq in held:
            self.offer(event, seq)

    def offer(self, event: Event, seq: tuple[int, int] | None = None) -> None:
        if not self.wants(event):
            return
        with self.cond:
            if self._held is not None:
                self._held.append((event, seq))
                return
        if seq is not None and self.after is not None and seq <= self.after:
            return
        with self.cond:
            if len(self.queue) >= self.max_events:
                self.overflowed = True
            else:
                self.queue.append(event)
            self.cond.notify()

    def take(self, timeout: float) -> Event | None:
        with self.cond:
            self.cond.wait_for(lambda: self.queue or self.overflowed, timeout)
            return self.queue.popleft() if self.queue else None


class Hub:
    """Live events of each session to its viewers."""

    def __init__(self):
        self._viewers: dict[str, set[Viewer]] = collections.defaultdict(set)
        self._lock = threading.Lock()

    def subscribe(self, session: str, viewer: Viewer) -> None:
        with self._lock:
            self._viewers[session].add(viewer)

    def unsubscribe(self, session: str, viewer: Viewer) -> None:
        with self._lock:  # the last viewer leaving frees the session's entry
            viewers = self._viewers.get(session)
            if viewers is not None:
                viewers.discard(viewer)
                if not viewers:
                    del self._viewers[session]

    def publish(self, session: str, event: Event, seq: tuple[int, int] | None = None) -> None:
        with self._lock:
            viewers = list(self._viewers.get(session, ()))
        for viewer in viewers:
            viewer.offer(event, seq)

    def count(self, session: str) -> int:
        return len(self._viewers.get(session, ()))

    def counts(self) -> dict[str, int]:
        """How many viewers each session has here (sessions without any are left out)."""
        with self._lock:
            return {session: len(viewers) for session, viewers in self._viewers.items() if viewers}
