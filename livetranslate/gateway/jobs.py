"""One request's stream to the server: the decoded audio goes out on a thread of its own
through the client library (`PipelineClient.stream`, as fast as the server takes it), and
its events reach the event loop through a queue. Cancelling it cancels the gRPC stream."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np

from livetranslate.audio import chunks
from livetranslate.client import ClientError, Connection, PipelineClient, StreamStats
from livetranslate.client.connection import stop_stream
from livetranslate.protocol import Event, SessionOptions

log = logging.getLogger("livetranslate.gateway")

CHUNK_S = 0.1  # audio per request, as `livetranslate stream` sends it
_DONE = object()


class Job:
    """`start` it on the event loop, then read `items()`: events, and a ClientError if the
    stream failed; it ends after the `end` event or the error. `cancel` from anywhere."""

    def __init__(self, connection: Connection, pcm: np.ndarray, rate: int, options: SessionOptions):
        self.connection, self.pcm, self.rate, self.options = connection, pcm, rate, options
        self.stats = StreamStats()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self._client: PipelineClient | None = None
        self._lock = threading.Lock()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, name=f"gateway-{self.options.session}", daemon=True).start()

    def _put(self, item) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is reading any more
            pass

    def _chunks(self) -> Iterator[np.ndarray]:
        for chunk in chunks(self.pcm, max(1, int(self.rate * CHUNK_S))):
            if self.cancelled.is_set():
                return
            yield chunk

    def _run(self) -> None:
        client = None
        try:
            client = PipelineClient(self.connection)
            with self._lock:
                self._client = client
            if self.cancelled.is_set():
                return
            for event in client.stream(self._chunks(), self.options, stats=self.stats):
                self._put(event)
        except ClientError as exc:
            self._put(exc)
        except Exception as exc:  # the client library's own failure: said, and logged whole
            log.exception("stream %s failed", self.options.session)
            self._put(ClientError(f"the gateway's stream failed: {exc}"))
        finally:
            with self._lock:
                self._client = None
            self.finished.set()
            if client is not None:
                try:
                    client.close()
                except Exception:  # a cancel closing it at the same moment
                    log.debug("closing a cancelled stream's client", exc_info=True)
            self._put(_DONE)

    def cancel(self) -> None:
        """Stops sending and cancels the gRPC stream (the server ends the sequence)."""
        self.cancelled.set()
        with self._lock:
            client = self._client
        if client is not None and not self.finished.is_set():
            # stop_stream joins tritonclient's reader thread: not on the event loop
            threading.Thread(target=_cancel, args=(client,), name="gateway-cancel", daemon=True).start()

    async def items(self) -> AsyncIterator[Event | ClientError]:
        while True:
            item = await self._queue.get()
            if item is _DONE:
                return
            yield item

    async def accepted(self, timeout_s: float) -> None:
        """Waits until the server took the stream, or said something (a refusal, an error),
        or the stream ended; whichever comes first (`items()` then has it)."""
        deadline = time.monotonic() + timeout_s
        while not self.stats.accepted and self._queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


def _cancel(client: PipelineClient) -> None:
    try:
        stop_stream(client.client, cancel=True)
    except Exception:  # the stream was closing on its own meanwhile
        log.debug("cancelling a stream that was closing", exc_info=True)
