"""Speech segmentation with webrtcvad: one stateful Segmenter per stream.

Frames of 30 ms go through a padding ring buffer. An utterance starts when more than
`trigger_ratio` of the ring is voiced (the ring becomes its pre-roll) and closes when more
than `release_ratio` of it is unvoiced, which gives `padding_ms` of hangover: webrtcvad
without hangover splits sentences at every short pause. An utterance that reaches
`max_utterance_s` is cut at its quietest frame near the end, never in the middle of a
loud frame, and the rest carries on as the next utterance.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
import webrtcvad

from livetranslate.audio import float_to_pcm16
from livetranslate.protocol import (
    END_SAMPLE,
    OPEN_SEGMENT_END,
    SAMPLE_RATE_HZ,
    SEGMENT_AUDIO,
    SPEECH_END_SAMPLE,
    START_SAMPLE,
)


@dataclass(frozen=True)
class VadOptions:
    mode: int = 3  # most aggressive; lower modes merge everything in noise (MODELS.md)
    frame_ms: int = 30
    padding_ms: int = 300
    trigger_ratio: float = 0.9
    release_ratio: float = 0.9
    max_utterance_s: float = 15.0
    min_speech_ms: int = 150  # shorter blips (clicks, breaths) are dropped
    cut_search_s: float = 2.0  # where to look for a quiet frame before a forced cut

    def __post_init__(self):
        if self.frame_ms not in (10, 20, 30):
            raise ValueError("frame_ms must be 10, 20 or 30")
        if not 0 <= self.mode <= 3:
            raise ValueError("mode must be 0..3")


@dataclass(frozen=True)
class Segment:
    audio: np.ndarray  # float32, 16 kHz
    start_sample: int
    end_sample: int
    speech_end_sample: int

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE_HZ

    @property
    def end_s(self) -> float:
        return self.end_sample / SAMPLE_RATE_HZ

    @property
    def is_open(self) -> bool:
        """A marker, not an utterance: speech began at start_sample and goes on."""
        return self.end_sample == OPEN_SEGMENT_END

    @classmethod
    def open_marker(cls, start_sample: int, speech_end_sample: int) -> "Segment":
        """Speech began at start_sample; its last voiced frame so far ends at speech_end_sample."""
        return cls(np.zeros(0, np.float32), start_sample, OPEN_SEGMENT_END, speech_end_sample)


def pack(segments: list[Segment]) -> dict[str, np.ndarray]:
    """The `vad` model's one response: all segments' audio end to end, and per segment its
    start, end and speech end (a segment's audio is end - start samples long)."""
    return {
        SEGMENT_AUDIO: np.concatenate([s.audio.astype(np.float32) for s in segments] or [np.zeros(0, np.float32)]),
        START_SAMPLE: np.array([s.start_sample for s in segments], np.int64),
        END_SAMPLE: np.array([s.end_sample for s in segments], np.int64),
        SPEECH_END_SAMPLE: np.array([s.speech_end_sample for s in segments], np.int64),
    }


def unpack(tensors: dict[str, np.ndarray]) -> list[Segment]:
    audio, starts = tensors[SEGMENT_AUDIO].reshape(-1), tensors[START_SAMPLE].reshape(-1)
    ends, speech_ends = tensors[END_SAMPLE].reshape(-1), tensors[SPEECH_END_SAMPLE].reshape(-1)
    segments, offset = [], 0
    for start, end, speech_end in zip(starts.tolist(), ends.tolist(), speech_ends.tolist()):
        length = 0 if end == OPEN_SEGMENT_END else end - start
        segments.append(Segment(audio[offset : offset + length], start, end, speech_end))
        offset += length
    return segments


class Segmenter:
    """Feed 16 kHz float samples in any chunk size; get closed utterances back."""

    def __init__(self, options: VadOptions = VadOptions()):
        self.options = options
        self._vad = webrtcvad.Vad(options.mode)
        self._frame = SAMPLE_RATE_HZ * options.frame_ms // 1000
        self._ring: collections.deque[tuple[np.ndarray, bool]] = collections.deque(
            maxlen=max(1, options.padding_ms // options.frame_ms)
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self._clock = 0  # samples consumed into frames so far
        self._voiced: list[np.ndarray] = []  # frames of the open utterance
        self._voiced_flags: list[bool] = []
        self._start = 0
        self._triggered = False
        self._last_voiced = 0  # end of the last voiced frame

    @property
    def open_start(self) -> int | None:
        """Where the utterance still open began, or None."""
        return self._start if self._triggered else None

    def process(self, samples: np.ndarray, end: bool = False) -> list[Segment]:
        """One request of the `vad` model: the utterances this audio closed (all of them
        at the stream's end), then an open marker while an utterance goes on."""
        segments = self.feed(samples) if len(samples) else []
        if end:
            return segments + self.flush()
        if self.open_start is None:
            return segments
        return segments + [Segment.open_marker(self.open_start, self._last_voiced)]

    @property
    def samples_seen(self) -> int:
        return self._clock + len(self._pending)

    def feed(self, samples: np.ndarray) -> list[Segment]:
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        segments: list[Segment] = []
        usable = len(self._pending) // self._frame * self._frame
        for offset in range(0, usable, self._frame):
            segment = self._push(self._pending[offset : offset + self._frame])
            if segment is not None:
                segments.append(segment)
        self._pending = self._pending[usable:]
        return segments

    def flush(self) -> list[Segment]:
        """Ends the stream: the open utterance (and any tail) is returned."""
        segments = []
        if self._triggered:
            if len(self._pending):
                self._voiced.append(self._pending)
                self._voiced_flags.append(False)
                self._clock += len(self._pending)
            segment = self._close(len(self._voiced))
            if segment is not None:
                segments.append(segment)
        self._pending = np.zeros(0, dtype=np.float32)
        self._ring.clear()
        self._triggered = False
        return segments

    def _push(self, frame: np.ndarray) -> Segment | None:
        is_speech = self._vad.is_speech(float_to_pcm16(frame).tobytes(), SAMPLE_RATE_HZ)
        self._clock += len(frame)
        if is_speech:
            self._last_voiced = self._clock
        opts = self.options
        if not self._triggered:
            self._ring.append((frame, is_speech))
            if sum(voiced for _, voiced in self._ring) > opts.trigger_ratio * self._ring.maxlen:
                self._triggered = True
                self._start = self._clock - len(self._ring) * self._frame
                self._voiced = [f for f, _ in self._ring]
                self._voiced_flags = [v for _, v in self._ring]
                self._ring.clear()
            return None
        self._voiced.append(frame)
        self._voiced_flags.append(is_speech)
        self._ring.append((frame, is_speech))
        if sum(not voiced for _, voiced in self._ring) > opts.release_ratio * self._ring.maxlen:
            self._triggered = False
            self._ring.clear()
            return self._close(len(self._voiced))
        if len(self._voiced) * self._frame >= opts.max_utterance_s * SAMPLE_RATE_HZ:
            return self._close(self._quietest_cut())
        return None

    def _quietest_cut(self) -> int:
        """Number of frames to keep in a forced cut: after the quietest recent frame."""
        search = max(1, int(self.options.cut_search_s * 1000 / self.options.frame_ms))
        first = max(1, len(self._voiced) - search)
        energies = [float(np.mean(f * f)) for f in self._voiced[first:]]
        return first + int(np.argmin(energies)) + 1

    def _close(self, keep: int) -> Segment | None:
        frames, flags = self._voiced[:keep], self._voiced_flags[:keep]
        rest, rest_flags = self._voiced[keep:], self._voiced_flags[keep:]
        start = self._start
        end = start + sum(len(f) for f in frames)
        self._start = end
        self._voiced, self._voiced_flags = rest, rest_flags
        voiced_frames = sum(flags)
        if not frames or voiced_frames * self.options.frame_ms < self.options.min_speech_ms:
            return None
        last_voiced = max(i for i, v in enumerate(flags) if v)
        speech_end = start + sum(len(f) for f in frames[: last_voiced + 1])
        return Segment(np.concatenate(frames), start, end, speech_end)
