"""Where messages wait for a stream's workers: the audio worker's inbox, and the partial
worker's one-message mailbox. (The translation worker's is a plain queue.)"""

from __future__ import annotations

import queue
import threading
from typing import Generic, TypeVar

from livetranslate.pipeline.messages import Abandon, Chunk, Idle, LastChunk, Stop
from livetranslate.protocol import ProtocolError

T = TypeVar("T")


class AudioInbox:
    """The audio worker's inbox. It counts the audio waiting, so a client that sends far
    faster than the stream works is refused (one that paces itself on its replies never is),
    notes when the client last sent, and takes nothing after the stream's last message."""

    def __init__(self, most_samples: float, sample_rate: int, clock):
        self._most, self._rate, self._clock = most_samples, sample_rate, clock
        self._queue: queue.Queue = queue.Queue()
        self._samples = 0
        self._shut = False  # a LastChunk or an Abandon went in
        self.last_put = clock()
        self._lock = threading.Lock()

    def put(self, message) -> None:
        with self._lock:
            if self._shut and isinstance(message, Chunk):
                raise ProtocolError("this stream has ended or was stopped: start a new one")
            if self._shut:
                return
            if isinstance(message, Chunk):
                if not isinstance(message, LastChunk) and self._samples + len(message.audio) > self._most:
                    raise ProtocolError(
                        f"too much audio waiting ({self._samples / self._rate:.0f} s): this stream sends "
                        f"faster than the server works; wait for the replies of earlier chunks (the chunk "
                        f"was dropped)")
                self._samples += len(message.audio)
                self.last_put = self._clock()
            self._shut = isinstance(message, (LastChunk, Abandon))
            if isinstance(message, Abandon):  # no flush: audio still waiting is dropped, its replies let go
                self._drop_waiting()
            self._queue.put(message)

    def _drop_waiting(self) -> None:
        while True:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(waiting, Chunk):
                self._samples -= len(waiting.audio)
                waiting.reply.close()

    def get(self, timeout: float):
        try:
            message = self._queue.get(timeout=timeout)
        except queue.Empty:
            return Idle()
        if isinstance(message, Chunk):
            with self._lock:
                self._samples -= len(message.audio)
        return message

    def waiting(self) -> bool:
        return not self._queue.empty()


class Latest(Generic[T]):
    """A one-message mailbox: a newer message replaces one not taken yet, and `offer` hands
    the replaced one back to the sender (to let go of what it holds). After a Stop, offers
    are handed straight back."""

    def __init__(self):
        self._message: T | None = None
        self._stopped = False
        self._cond = threading.Condition()

    def offer(self, message: T) -> T | None:
        with self._cond:
            if self._stopped:
                return message
            old, self._message = self._message, message
            self._stopped = isinstance(message, Stop)
            self._cond.notify()
            return old

    def withdraw(self) -> T | None:
        with self._cond:
            if self._stopped:
                return None
            old, self._message = self._message, None
            return old

    def take(self) -> T:
        with self._cond:
            self._cond.wait_for(lambda: self._message is not None)
            message, self._message = self._message, (self._message if self._stopped else None)
            return message
