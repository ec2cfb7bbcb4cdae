"""What the stream's workers hand each other. Each message is an immutable value: a worker
never reads another worker's containers, it gets what it needs in the message. End, tick,
keep-alive and abandon are types of their own.

    client request -> Chunk / LastChunk ──> audio worker ──> Speaking ──> partial worker
                      Abandon           ──>              ──> Translate / Silence / KeepAlive
                                                              / Finish / Abandon ──> translation worker
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from livetranslate.pipeline.replies import Reply, SharedReply
from livetranslate.pipeline.streaming import AudioView, StreamDecoder
from livetranslate.protocol import Event


# --- to the audio worker --------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """One request's audio, as the client sent it."""

    audio: np.ndarray  # int16
    arrived: float  # time.monotonic() when the request reached the pipeline
    reply: Reply


@dataclass(frozen=True)
class LastChunk(Chunk):
    """The client's sequence end: its audio, then the open utterance, then `end`."""


@dataclass(frozen=True)
class Abandon:
    """Stop at once, without a flush: the client vanished or was replaced, the stream failed,
    or the server stops."""

    reason: str


@dataclass(frozen=True)
class Idle:
    """Nothing arrived for a while (the audio worker's own wake-up)."""


# --- to the partial worker ------------------------------------------------------------
class LiveUtterance:
    """The utterance being spoken, shared by the audio worker (which closes it before its
    transcript goes out) and the partial worker (which sends only while it is open): a
    partial never follows its transcript."""

    def __init__(self, start_sample: int):
        self.start_sample = start_sample
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def send(self, reply: SharedReply, event: Event) -> bool:
        with self._lock:
            if not self._closed:
                reply.send(event)
            return not self._closed


@dataclass(frozen=True)
class Speaking:
    """The open utterance as the audio worker saw it after a chunk: all a partial needs."""

    utterance: LiveUtterance
    voiced_end: int  # last voiced sample so far
    audio_end: int  # samples received so far
    audio: AudioView
    decoder: StreamDecoder  # a snapshot: plans, never commits
    arrived: float  # arrival of the chunk that ends at audio_end
    reply: SharedReply  # held for this message: whoever drops it closes it


@dataclass(frozen=True)
class Stop:
    """The partial worker ends."""


# --- to the translation worker ----------------------------------------------------------
@dataclass(frozen=True)
class Translate:
    transcript: Event
    spoken_at: float  # arrival of the utterance's end, for latency
    reply: SharedReply  # held
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Silence:
    """The speaker is silent at this audio time (session clock): a pause may end the window."""

    now_s: float
    reply: SharedReply  # held


@dataclass(frozen=True)
class KeepAlive:
    """Touch the `enhance` sequence: it must not idle out while the stream lives."""

    reply: SharedReply | None  # held, when a request is there to answer on


@dataclass(frozen=True)
class Finish:
    """The stream ended: the window is flushed, and then the stream closes with `end`."""

    reply: SharedReply  # held; the stream's close sends `end` on it
