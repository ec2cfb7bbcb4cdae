"""The session store's interface, which both stores satisfy: the local event log of one data
directory (`SessionStore`, the default) and Redis shared by several servers
(`RedisSessionStore`); and `NoStore`, the null store of a pipeline that keeps nothing."""

from __future__ import annotations

from typing import Protocol

from livetranslate.protocol import Event
from livetranslate.store.fanout import Hub, Viewer
from livetranslate.store.files import SessionInfo


class Store(Protocol):
    """What the pipeline, the `sessions` model and the commands use of a session store."""

    shared: bool  # several servers use it: a draining one hands its sessions over
    hub: Hub | None  # live events to this server's viewers (None: a reader without viewers)
    keeps: bool  # it keeps sessions (False: the null store, NoStore)

    # --- a speaker's session --------------------------------------------------------------
    def open(
        self, session: str, source_language: str, target_language: str, glossary: list[dict] | None = None
    ) -> SessionInfo: ...

    def resume_point(self, session: str) -> tuple[int, float]: ...

    def live_streams(self, session: str) -> int: ...

    def append(self, session: str, event: Event) -> None: ...

    def sync_info(self, session: str) -> None: ...

    # --- an organiser's additions: corrections, summaries, late viewers' translations ------
    def annotate(self, session: str, event: Event) -> None:
        """Stored whether the session is live here, live on another server, or ended; its
        viewers get it. StoreError when there is no such session or it cannot be stored."""
        ...

    def close(self, session: str) -> bool: ...

    # --- readers and viewers --------------------------------------------------------------
    def info(self, session: str) -> SessionInfo | None: ...

    def events(self, session: str) -> list[Event]: ...

    def ended_with(self, session: str) -> Event | None: ...

    def attach(self, session: str, viewer: Viewer) -> list[Event]: ...

    def detach(self, session: str, viewer: Viewer) -> None: ...

    def sessions(self) -> list[SessionInfo]: ...

    # --- the server's start and stop ------------------------------------------------------
    def recover(self) -> list[str]: ...

    def prune(
        self, max_age_s: float | None = None, max_total_bytes: int | None = None, dry_run: bool = False
    ) -> list[SessionInfo]: ...

    def shutdown(self) -> None: ...


class SharedStore(Store, Protocol):
    """What only a store shared by several servers does (`shared` is True)."""

    def handover(self, session: str, reason: str) -> None: ...

    def publish_languages(self, session: str, languages: set[str]) -> None: ...

    def viewer_languages(self, session: str) -> set[str]: ...


class NoStore:
    """The store of a pipeline that keeps no sessions (tests, a transcriber without history):
    nothing is stored, nobody can subscribe, every session is new."""

    shared = False
    hub: Hub | None = None
    keeps = False  # a pipeline refuses viewers with this store

    def open(
        self, session: str, source_language: str, target_language: str, glossary: list[dict] | None = None
    ) -> SessionInfo:
        return SessionInfo(session, source_language, target_language, 0.0)

    def resume_point(self, session: str) -> tuple[int, float]:
        return 0, 0.0

    def live_streams(self, session: str) -> int:
        return 0

    def append(self, session: str, event: Event) -> None:
        pass

    def sync_info(self, session: str) -> None:
        pass

    def annotate(self, session: str, event: Event) -> None:
        pass

    def close(self, session: str) -> bool:
        return True

    def info(self, session: str) -> SessionInfo | None:
        return None

    def events(self, session: str) -> list[Event]:
        return []

    def ended_with(self, session: str) -> Event | None:
        return None

    def attach(self, session: str, viewer: Viewer) -> list[Event]:
        return []

    def detach(self, session: str, viewer: Viewer) -> None:
        pass

    def sessions(self) -> list[SessionInfo]:
        return []

    def recover(self) -> list[str]:
        return []

    def prune(
        self, max_age_s: float | None = None, max_total_bytes: int | None = None, dry_run: bool = False
    ) -> list[SessionInfo]:
        return []

    def shutdown(self) -> None:
        pass
