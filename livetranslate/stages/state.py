"""Per-stream state with an owner and a lifetime, in the sequence-stateful models.

Triton drops a sequence that idles past `max_sequence_idle_microseconds` without telling
the model, so every stateful model keeps its streams here: created on sequence start,
removed on sequence end, and expired after `ttl_s` without a request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class StreamTable(Generic[T]):
    def __init__(
        self,
        ttl_s: float,
        on_expire: Callable[[int, T], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl_s = ttl_s
        self.clock = clock
        self.on_expire = on_expire
        self._items: dict[int, tuple[T, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: int, value: T) -> T | None:
        """Adds a stream; returns the one it replaces (a restarted sequence id), if any."""
        with self._lock:
            old = self._items.get(key)
            self._items[key] = (value, self.clock())
        return None if old is None else old[0]

    def get(self, key: int) -> T | None:
        """The stream, marked as active now; None when unknown or expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items[key] = (item[0], self.clock())
            return item[0]

    def peek(self, key: int) -> T | None:
        """The stream, without marking it as active."""
        with self._lock:
            item = self._items.get(key)
        return None if item is None else item[0]

    def keys(self) -> list[int]:
        with self._lock:
            return list(self._items)

    def pop(self, key: int) -> T | None:
        with self._lock:
            item = self._items.pop(key, None)
        return None if item is None else item[0]

    def expire(self) -> list[int]:
        """Removes streams idle for longer than the TTL; returns their keys."""
        now = self.clock()
        with self._lock:
            stale = [(k, v) for k, (v, seen) in self._items.items() if now - seen > self.ttl_s]
            for key, _ in stale:
                del self._items[key]
        for key, value in stale:
            if self.on_expire is not None:
                self.on_expire(key, value)
        return [key for key, _ in stale]
