"""Where messages wait for a stream's workers: the audio worker's inbox, the translation
worker's inbox, and the partial worker's one-message mailbox. The inboxes also say how much
waits in them (the pipeline's gauges: livetranslate.pipeline.metrics)."""

from __future__ import annotations

import collections
import queue
import threading
from typing import Generic, TypeVar

from livetranslate.pipeline.messages import (
    Abandon,
    Chunk,
    Idle,
    LastChunk,
    Stop,
    Translate,
)
from livetranslate.protocol import ProtocolError

T = TypeVar("T")


class TooFast(ProtocolError):
    """A chunk refused: the stream sends far faster than it is processed."""


class AudioInbox:
    """The audio worker's inbox. It counts the audio waiting, so a client that sends far
    faster than the stream works is refused (one that paces itself on its replies never is),
    notes when the client last sent, and takes nothing after the stream's last message."""

    def __init__(self, most_samples: float, sample_rate: int, clock, counted_samples: float = 0):
        self._most, self._rate, self._clock = most_samples, sample_rate, clock
        self._queue: queue.Queue = queue.Queue()
        self._samples = 0
        self._shut = False  # a LastChunk or an Abandon went in
        self._abandoned = False  # an Abandon went in
        self.last_put = clock()
        # when the client last sent audio: once `counted_samples` more came in (tiny requests add up)
        self.last_audio = self.last_put
        self._counted, self._uncounted = counted_samples, 0
        self._lock = threading.Lock()

    def put(self, message) -> None:
        with self._lock:
            if self._shut and isinstance(message, Chunk):
                raise ProtocolError("this stream has ended or was stopped: start a new one")
            if self._shut:
                return
            if isinstance(message, Chunk):
                if not isinstance(message, LastChunk) and self._samples + len(message.audio) > self._most:
                    raise TooFast(
                        f"too much audio waiting ({self._samples / self._rate:.0f} s): this stream sends "
                        f"faster than the server works; wait for the replies of earlier chunks (the chunk "
                        f"was dropped)"
                    )
                self._samples += len(message.audio)
                self.last_put = self._clock()
                self._uncounted += len(message.audio)
                if self._uncounted >= self._counted:
                    self.last_audio, self._uncounted = self.last_put, 0
            self._shut = isinstance(message, (LastChunk, Abandon))
            self._abandoned = isinstance(message, Abandon)
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

    @property
    def client_waits(self) -> bool:
        """Whether the client waits for the server: audio it sent is still waiting, or it
        sent its last chunk (the stream finishes its work: its translations, its `end`)."""
        with self._lock:
            return self._samples > 0 or (self._shut and not self._abandoned)

    @property
    def queued_s(self) -> float:
        """Seconds of audio waiting for the audio worker."""
        with self._lock:
            return self._samples / self._rate


class TranslationInbox(queue.Queue):
    """The translation worker's inbox. It also knows when each transcript not translated
    yet (waiting, or the one in work) was handed over: how far the translations are behind."""

    def _init(self, maxsize):  # queue.Queue's hooks, called under its mutex
        super()._init(maxsize)
        self._untranslated: collections.deque[float] = collections.deque()

    def _put(self, item):
        super()._put(item)
        if isinstance(item, Translate):
            self._untranslated.append(item.queued_at)

    def translated(self) -> None:
        """The worker is done with the oldest transcript (its translation went out or failed)."""
        with self.mutex:
            if self._untranslated:
                self._untranslated.popleft()

    def untranslated(self) -> tuple[int, float | None]:
        """(transcripts not translated yet, when the oldest of them was handed over)."""
        with self.mutex:
            return len(self._untranslated), (self._untranslated[0] if self._untranslated else None)


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
            assert message is not None  # waited for
            return message
