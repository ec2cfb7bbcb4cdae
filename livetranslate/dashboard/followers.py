"""Followers: the connections behind the captions page. One `Follower` per (session,
language) watches the session as a viewer in a thread of its own and keeps a `Snapshot` that
any number of pages read (a projector and every phone share one connection). Without a
session named, a `NewestFollower` follows the newest live session and switches when a new one
starts. Followers nobody asked for in `idle_s` stop; `Followers.get` makes them again."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from livetranslate.client import ClientError, PipelineClient
from livetranslate.client.connection import stop_stream
from livetranslate.present.captions import CaptionLines, Snapshot, caption_events
from livetranslate.protocol import EventKind

log = logging.getLogger(__name__)
POLL_S = 2.0  # how often a waiting follower, and the newest-session follower, look at the list


class Lister:
    """Asks the server's session list, over one connection kept between polls (a follower
    that waits asks every POLL_S)."""

    def __init__(self, connect: Callable[[], PipelineClient]):
        self.connect = connect
        self._client: PipelineClient | None = None

    def info(self, name: str | None) -> dict | None:
        """The listed info of session NAME, or of the newest live session when NAME is None."""
        if self._client is None:
            self._client = self.connect()
        try:
            listed = self._client.sessions("list")
        except ClientError:
            self.close()  # a new connection next time
            raise
        return next((i for i in listed if ((i["name"] == name) if name is not None else i["state"] == "live")), None)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


class Follower:
    def __init__(self, connect: Callable[[], PipelineClient], session: str, lang: str | None):
        self.connect, self.session, self.lang = connect, session, lang
        self.last_used = time.monotonic()
        self._snapshot = Snapshot(session=session, lang=lang or "")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client: PipelineClient | None = None
        self._counts: dict | None = None  # the session's event counts when last followed
        self._lister = Lister(connect)
        self._thread = threading.Thread(target=self._run, name=f"captions-{session}", daemon=True)
        self._thread.start()

    def snapshot(self) -> Snapshot:
        self.last_used = time.monotonic()
        with self._lock:
            return self._snapshot

    def _publish(self, **changes) -> None:
        with self._lock:
            self._snapshot = dataclasses.replace(self._snapshot, version=self._snapshot.version + 1, **changes)

    def stop(self) -> None:
        self._stop.set()
        client = self._client
        if client is not None:  # ends the watch at once: its stream fails, the thread sees _stop
            try:
                stop_stream(client.client, cancel=True)  # (close() would wait for the session's end)
            except Exception as exc:
                log.info("captions %s: stopping: %s", self.session, exc)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        try:
            self._watch_while_shown()
        finally:
            self._lister.close()

    def _watch_while_shown(self) -> None:
        while not self._stop.is_set():
            try:
                info = self._lister.info(self.session)
                if info is None:
                    self._publish(state="waiting", message=f"Waiting for “{self.session}” to start…")
                elif (
                    info["state"] == "live"
                    or self._snapshot.state in ("connecting", "waiting", "unreachable")
                    or info.get("counts") != self._counts  # an ended one got a correction, a name
                ):
                    self._counts = info.get("counts")
                    self._follow(self.lang or info["target_language"], info["state"] == "live")
                    continue  # ended: look at once whether it is live again
            except ClientError as exc:
                if self._stop.is_set():
                    return  # stop() closed the connection under the watch
                self._publish(state="unreachable", message="The server cannot be reached; retrying…")
                log.info("captions %s: %s", self.session, exc)
            except Exception:  # a thread of its own: log it and try again, never die
                if self._stop.is_set():
                    return
                log.exception("captions %s", self.session)
            self._stop.wait(POLL_S)

    def _follow(self, lang: str, live: bool = True) -> None:
        """Watches the session once: the history rebuilds the lines, then live events."""
        lines = CaptionLines(lang)
        self._client = client = self.connect()
        try:
            self._publish(lang=lang, state="live" if live else self._snapshot.state, message="")
            for event in caption_events(client, self.session, lang):
                if self._stop.is_set():
                    return
                if event.kind == EventKind.END:
                    self._publish(state="ended", interim="", interim_source="")
                    break
                if lines.add(event):
                    self._publish(
                        lines=tuple(lines.lines),
                        interim=lines.interim.text if lines.interim else "",
                        interim_source=lines.pending_source(),
                        dropped=lines.dropped,
                        spoken=lines.spoken,
                    )
            self._stop.wait(POLL_S)  # an ended session: look again later whether it goes on
        finally:
            self._client = None
            client.close()


class NewestFollower:
    """Follows the newest live session; keeps showing the last one until another starts."""

    def __init__(self, followers: Followers, lang: str | None):
        self.followers, self.lang = followers, lang
        self.last_used = time.monotonic()
        self.current: str | None = None
        self._lister = Lister(followers.connect)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="captions-newest", daemon=True)
        self._thread.start()

    def snapshot(self) -> Snapshot:
        self.last_used = time.monotonic()
        if self.current is None:
            return Snapshot(lang=self.lang or "", state="waiting", message="Waiting for a live session…")
        return self.followers.get(self.current, self.lang).snapshot()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                info = self._lister.info(None)
                if info is not None and info["name"] != self.current:
                    self.current = info["name"]
                    self.followers.get(self.current, self.lang)  # starts watching before a page asks
            except ClientError as exc:
                log.info("captions (newest live session): %s", exc)
            except Exception:
                log.exception("captions (newest live session)")
            self._stop.wait(POLL_S)
        self._lister.close()


class Followers:
    """The followers of one dashboard process, by (session, language); session None is the
    newest live session."""

    def __init__(self, connect: Callable[[], PipelineClient], idle_s: float = 60.0):
        self.connect, self.idle_s = connect, idle_s
        self._all: dict[tuple[str | None, str | None], Follower | NewestFollower] = {}
        self._lock = threading.Lock()

    def get(self, session: str | None, lang: str | None) -> Follower | NewestFollower:
        now = time.monotonic()
        with self._lock:
            for key, existing in list(self._all.items()):
                if existing.stopped or now - existing.last_used > self.idle_s:
                    existing.stop()
                    del self._all[key]
            follower = self._all.get((session, lang))
            if follower is None:
                follower = Follower(self.connect, session, lang) if session is not None else NewestFollower(self, lang)
                self._all[(session, lang)] = follower
            follower.last_used = now
            return follower

    def close(self) -> None:
        with self._lock:
            for follower in self._all.values():
                follower.stop()
            self._all.clear()
