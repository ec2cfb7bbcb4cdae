"""Viewers: a request that names a session gets its stored history, then its live events,
until the session ends, the viewer cancels, or it falls too far behind. Many viewers per
session; a slow viewer never slows the speaker (each has its own bounded queue, filled by
the store as events are stored). Each viewer reads one language: the one it named
(TARGET_LANGUAGE), else the speaker's target; it gets the translations of that language
only, and the session's live streams translate into it while it watches."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from livetranslate.keys import Client
from livetranslate.pipeline.guards import Admission, ServerFull
from livetranslate.pipeline.replies import Reply
from livetranslate.pipeline.sessions import ViewerLanguages
from livetranslate.protocol import (
    MAX_SESSION_NAME,
    Event,
    EventKind,
    ProtocolError,
    check_language,
    decode_text,
)
from livetranslate.store import Viewer
from livetranslate.store.files import SessionInfo
from livetranslate.store.interface import Store


def follow(
    store: Store,
    session: str,
    reply: Reply,
    *,
    language: str | None = None,
    languages: ViewerLanguages | None = None,
    max_events: int = 500,
    cancelled: Callable[[], bool] = lambda: False,
    poll_s: float = 0.5,
    stopping: Callable[[], str] = lambda: "",
    late: Callable[[str, str, SessionInfo, list[Event]], None] | None = None,
) -> None:
    """One viewer: the stored history of `session`, then its live events, until `end`, the
    viewer cancels, it falls `max_events` behind (then it is told and dropped), or the
    server stops (`stopping()` says why; the viewer is told). It reads `language` (None: the
    speaker's target), counted in `languages` while it watches."""
    # One piece: the history, the live queue and the subscription share one try/finally that
    # unsubscribes the viewer and counts its language off on every way out.
    viewer = Viewer(max_events)

    def stop(message: str) -> None:  # the viewer's own failure: an `end` that carries it
        reply.send(Event(EventKind.END, error=message))

    try:
        info = store.info(session)
        if info is None:
            stop(f"no session named {session!r}")
            return
        wanted = language or info.target_language or None
        if languages is not None and wanted:
            try:
                languages.join(session, wanted, info.target_language)
            except ProtocolError as exc:  # too many languages in this session
                stop(str(exc))
                return
        viewer.language = wanted  # counted in `languages` from here
        # `end` events in the history close earlier runs of a resumed session: the viewer's
        # one `end` is the session's last
        history = store.attach(session, viewer)
        for stored in history:
            if stored.kind != EventKind.END and viewer.wants(stored):
                reply.send(stored)
        if late is not None and wanted:  # the lines before it came, in its language too
            late(session, wanted, info, history)
        while not cancelled():
            if stopping():
                stop(f"{stopping()}: follow the session again in a moment")
                return
            event = viewer.take(poll_s)
            if viewer.overflowed:
                stop(f"viewer fell more than {max_events} events behind and was dropped; subscribe again to catch up")
                return
            if event is not None:
                reply.send(event)
                if event.kind == EventKind.END:
                    return
            else:
                last = store.ended_with(session)  # also ends a session whose `end` was in the history
                if last is not None:
                    reply.send(last)
                    return
    finally:
        store.detach(session, viewer)
        if languages is not None and viewer.language:
            languages.leave(session, viewer.language)
        reply.close()


class Viewers:
    """The viewers of every session this pipeline serves: admitted, each followed by its
    own thread, counted out when it ends."""

    def __init__(
        self,
        store: Store,
        admission: Admission,
        languages: ViewerLanguages,
        late: Callable[[str, str, SessionInfo, list[Event]], None] | None = None,
    ):
        """`late(session, language, info, history)`: a viewer attached in `language` and got
        `history` (its lines are translated into that language: pipeline.revisions)."""
        self.store, self.admission, self.languages, self.late = store, admission, languages, late
        self.stopping = ""  # the server is stopping: why every viewer ends

    def stop(self, reason: str) -> None:
        """Every viewer gets an `end` saying why (within a poll). (New viewers are refused
        before they get here, by the pipeline that stops.)"""
        self.stopping = reason

    def subscribe(
        self,
        request_id: int,
        subscribe: np.ndarray,
        reply: Reply,
        language: np.ndarray | None = None,
        client: Client | None = None,
    ) -> None:
        if not self.store.keeps:
            raise ProtocolError("this server keeps no sessions: nothing to subscribe to")
        name = decode_text(subscribe).strip()
        if not name or len(name) > MAX_SESSION_NAME or not name.isprintable():
            raise ProtocolError(f"SUBSCRIBE must name a session: 1 to {MAX_SESSION_NAME} printable characters")
        named = decode_text(language).strip()
        wanted = check_language(named) if named else None
        try:
            self.admission.admit_viewer(name, client)
        except ServerFull as exc:  # a viewer's own failure is an `end` that carries it
            reply.send(Event(EventKind.END, error=str(exc)))
            reply.close()
            return

        def run():
            try:
                follow(
                    self.store,
                    name,
                    reply,
                    language=wanted,
                    languages=self.languages,
                    cancelled=getattr(reply, "is_cancelled", lambda: False),
                    stopping=lambda: self.stopping,
                    late=self.late,
                )
            finally:
                self.admission.viewer_left(name, client)

        threading.Thread(target=run, name=f"viewer-{request_id}", daemon=True).start()
