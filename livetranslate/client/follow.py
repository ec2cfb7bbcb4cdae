"""A viewer that follows a session across reconnects and servers."""

from __future__ import annotations

import collections
from collections.abc import Callable

from livetranslate.client.connection import ClientError, Connection, passing_refusal
from livetranslate.client.pipeline import PipelineClient
from livetranslate.client.resilient import Lost, Refused, connected, retrying
from livetranslate.protocol import INTERIM_KINDS, Event


def follow(
    connection: Connection,
    session: str,
    on_event: Callable[[Event], None],
    *,
    language: str | None = None,
    on_status: Callable[[str], None] = lambda message: None,
    idle_timeout_s: float = 3600.0,
    max_backoff_s: float = 8.0,
    give_up_after_s: float | None = None,
) -> None:
    """Follows a session as a viewer until its `end` (PipelineClient.watch). With several
    addresses it survives the loss of its server (a crash, a drain) as a speaker does: it
    subscribes again at the next address. The new subscription replays the session's stored
    history: what `on_event` already had is skipped, counted by content (kind, segments,
    language, text, error), so each stored event comes once and the ones missed meanwhile come
    too. Partials are never stored, so never replayed. Counts, not a set: two equal events
    are two events."""
    # One piece: the subscription and the retry loop share what the viewer has already been
    # given (the replay counts), which must outlive every reconnect.
    several = len(connection.urls) > 1
    delivered: collections.Counter = collections.Counter()
    address: str | None = None

    def subscribe() -> None:
        nonlocal address
        client = PipelineClient(connection, addresses=connection.after(address))
        if address is not None:
            on_status(connected(client, address, session))
        address = client.url
        replayed: collections.Counter = collections.Counter()
        answered = False
        with client:
            try:
                for event in client.watch(session, idle_timeout_s, language):
                    refusal = passing_refusal(event) if several else ""
                    if refusal:
                        raise Refused(f"{client.url} refused the viewer: {refusal}" if not answered else refusal)
                    answered = True
                    if event.kind not in INTERIM_KINDS:
                        key = (
                            event.kind,
                            event.segment_id,
                            event.first_segment_id,
                            event.language,
                            event.text,
                            event.error,
                        )
                        replayed[key] += 1
                        if replayed[key] <= delivered[key]:
                            continue
                        delivered[key] += 1
                    on_event(event)
            except ClientError as exc:
                if not answered or not several:
                    raise
                on_status(f"connection lost ({exc}); following the session on another server")
                raise Lost() from exc

    first = True
    while True:
        try:
            for attempt in retrying(first, several, len(connection.urls), give_up_after_s, max_backoff_s, on_status):
                with attempt:
                    subscribe()
            return
        except Lost:
            first = False
