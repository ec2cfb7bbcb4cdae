"""What the Redis store adds to a session from outside its speaker's streams: corrections,
summaries, late viewers' translations. No lease is needed (the session may be live on
another server, or ended); viewers on every server get the event from the session's stream."""

from __future__ import annotations

import json
import uuid
from typing import Any

from livetranslate.protocol import Event, EventKind
from livetranslate.store.files import StoreError
from livetranslate.store.redis_common import lua

_ANNOTATE = lua("annotate")


class RedisAnnotating:
    """A mixin of RedisSessionStore (it has `_redis`, `_k` and `_call`)."""

    _redis: Any

    def _k(self, kind: str, name: str = "") -> str:
        raise NotImplementedError

    def _call(self, what: str, fn, *args, **kw):
        raise NotImplementedError

    def annotate(self, session: str, event: Event) -> None:
        script = self._redis.register_script(_ANNOTATE)
        language = event.language if event.kind == EventKind.TRANSLATION else ""
        try:
            self._call(
                f"storing session {session!r}",
                script,
                keys=[self._k("events", session), self._k("meta", session)],
                args=[uuid.uuid4().hex, json.dumps(event.to_dict(), ensure_ascii=False), event.kind.value, language],
            )
        except StoreError as exc:
            if "NO SESSION" in str(exc):
                raise StoreError(f"no session named {session!r}") from None
            raise
