"""Where events go: one request's response channel, shared by the workers that answer on it.

Every request of a speaker stream gets its final flag once its audio is processed and the
events it caused are out (the client paces itself on these flags), so a reply is reference
counted: each worker that may still answer on it holds it, and the last to let go closes it.
"""

from __future__ import annotations

import threading
from typing import Protocol

from livetranslate.pipeline.metrics import Metrics
from livetranslate.protocol import Event


class Reply(Protocol):
    """One request's response channel."""

    def send(self, event: Event) -> None: ...

    def close(self) -> None: ...


class SharedReply:
    """A reply closed when its last holder lets go."""

    def __init__(self, reply: Reply):
        self._reply = reply
        self._holders = 1
        self._lock = threading.Lock()

    def send(self, event: Event) -> None:
        self._reply.send(event)

    def hold(self) -> SharedReply:
        with self._lock:
            self._holders += 1
        return self

    def close(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._reply.close()


class MeteredReply:
    """A reply that reports each event it sends (its latency: livetranslate.pipeline.metrics). Every
    event of a speaker stream goes out through one, so latencies are measured in one place."""

    def __init__(self, reply: Reply, metrics: Metrics):
        self._reply, self._metrics = reply, metrics

    def send(self, event: Event) -> None:
        self._reply.send(event)
        self._metrics.sent(event)

    def close(self) -> None:
        self._reply.close()
