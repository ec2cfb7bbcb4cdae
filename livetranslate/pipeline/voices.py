"""Who speaks in each session on this server: one clustering of voices per session
(livetranslate.stages.speakers.clustering), shared by every stream of the session here. A
client that reconnects, or a second microphone streaming into the same session, goes on with
the same labels: S1 stays the same voice across them, and two streams never both call
different people S1."""

from __future__ import annotations

import collections
import threading

import numpy as np

from livetranslate.stages.speakers.clustering import OnlineSpeakers

MAX_SESSIONS = 256  # sessions whose voices are kept; the least recently heard one goes first


class SessionVoices:
    """One session's speakers. Each labelled utterance has an index (the order it was
    labelled in, across the session's streams) and, once its transcript has one, a segment id."""

    def __init__(self, num_speakers: int | None = None):
        self._speakers = OnlineSpeakers(num_speakers=num_speakers)
        self._segments: dict[int, int] = {}  # utterance index -> its transcript's segment id
        self._lock = threading.Lock()

    def assign(self, embedding: np.ndarray, duration_s: float) -> tuple[str, int]:
        """The utterance's label, and its index."""
        with self._lock:
            label = self._speakers.assign(embedding, duration_s).label
            return label, len(self._speakers.history) - 1

    def sent(self, index: int, segment_id: int) -> None:
        """The utterance went out as transcript `segment_id`."""
        with self._lock:
            self._segments[index] = segment_id

    def recheck(self) -> list[tuple[int, str]]:
        """The voices looked at again: (segment id, its new label) of each line sent whose
        speaker changed, in order."""
        with self._lock:
            changed = self._speakers.recheck().relabelled
            return [(self._segments[n], label) for n, label in sorted(changed.items()) if n in self._segments]


class Voices:
    """Every session's voices on this server (the newest MAX_SESSIONS sessions)."""

    def __init__(self, most: int = MAX_SESSIONS):
        self._sessions: collections.OrderedDict[str, SessionVoices] = collections.OrderedDict()
        self._most = most
        self._lock = threading.Lock()

    def of(self, session: str, num_speakers: int | None = None) -> SessionVoices:
        """The session's voices (made for its first stream here; its hint holds)."""
        with self._lock:
            voices = self._sessions.pop(session, None) or SessionVoices(num_speakers)
            self._sessions[session] = voices
            while len(self._sessions) > self._most:
                self._sessions.popitem(last=False)
            return voices
