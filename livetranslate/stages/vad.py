"""Speech segmentation with webrtcvad, the `vad` model's logic (model_repository/vad): one
stateful Segmenter per stream.

Frames of 30 ms go through a padding ring buffer. An utterance starts when more than
`trigger_ratio` of the ring is voiced (the ring becomes its pre-roll) and closes when more
than `release_ratio` of it is unvoiced, which gives `padding_ms` of hangover: webrtcvad
without hangover splits sentences at every short pause. An utterance that reaches
`max_utterance_s` is cut at its quietest frame near the end, never in the middle of a
loud frame, and the rest carries on as the next utterance.

In noise and reverb webrtcvad hears the start of speech in bursts with short unvoiced gaps,
and the ring only triggers on a run of voiced frames, often a second or more into the
sentence; Whisper, given a sentence without its start, tends to leave out all of it. So a
new utterance reaches back (`lookback_ms`) over the voiced bursts before its pre-roll, as
long as no gap between them is longer than `lookback_gap_ms`, never into the utterance
before it. Once an utterance is `split_after_s` long, a shorter pause (`split_pause_ms`)
closes it: turns 150-500 ms apart would otherwise make one long utterance and one long final
decode (bench/results/policies.md).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
import webrtcvad

from livetranslate.audio import float_to_pcm16
from livetranslate.protocol import SAMPLE_RATE_HZ


@dataclass(frozen=True)
class VadOptions:
    mode: int = 3  # most aggressive: lower modes hear noise as speech and merge utterances
    frame_ms: int = 30
    padding_ms: int = 300
    trigger_ratio: float = 0.9
    release_ratio: float = 0.9
    max_utterance_s: float = 15.0
    min_speech_ms: int = 150  # shorter blips (clicks, breaths) are dropped
    cut_search_s: float = 2.0  # where to look for a quiet frame before a forced cut
    lookback_ms: int = 1500  # how far before its pre-roll an utterance may reach back (0: never)
    lookback_gap_ms: int = 150  # the longest unvoiced gap it reaches back over
    # An utterance already this long closes at a shorter pause, split_pause_ms of unvoiced
    # frames (0: never). People leave 150-500 ms between turns, under the hangover, and an
    # utterance of two or three turns is a long final decode; split, its first turn is
    # committed sooner and each decode is shorter, at a WER within noise (policies.md).
    split_after_s: float = 4.0
    split_pause_ms: int = 150

    def __post_init__(self):
        if self.frame_ms not in (10, 20, 30):
            raise ValueError("frame_ms must be 10, 20 or 30")
        if not 0 <= self.mode <= 3:
            raise ValueError("mode must be 0..3")
        if self.lookback_ms < 0 or self.lookback_gap_ms < 0:
            raise ValueError("lookback_ms and lookback_gap_ms must be >= 0")
        if self.split_after_s < 0 or self.split_pause_ms < self.frame_ms:
            raise ValueError("split_after_s must be >= 0 and split_pause_ms at least one frame")


@dataclass(frozen=True)
class Utterance:
    """A closed utterance, as samples of the stream's 16 kHz clock (the stream holds the audio)."""

    start_sample: int
    end_sample: int
    speech_end_sample: int  # end of its last voiced frame (the hangover follows)

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE_HZ

    @property
    def end_s(self) -> float:
        return self.end_sample / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class Ongoing:
    """An utterance still being spoken: where it began, where its last voiced frame ends."""

    start_sample: int
    speech_end_sample: int


@dataclass(frozen=True)
class Boundaries:
    """What one request of the `vad` model answers: the utterances its audio closed, in
    order, and the one still open (for partials), if any."""

    closed: tuple[Utterance, ...] = ()
    ongoing: Ongoing | None = None


class Segmenter:
    """Feed 16 kHz float samples in any chunk size; get the boundaries of utterances back.
    It keeps no audio of its own beyond the frame being filled: per frame of the open
    utterance only its length, whether it was voiced and its energy (for a forced cut)."""

    def __init__(self, options: VadOptions = VadOptions()):
        self.options = options
        self._vad = webrtcvad.Vad(options.mode)
        self._frame = SAMPLE_RATE_HZ * options.frame_ms // 1000
        self._ring_frames = max(1, options.padding_ms // options.frame_ms)
        self._ring: collections.deque[tuple[float, bool]] = collections.deque(
            maxlen=self._ring_frames
        )  # (energy, voiced) of the last frames
        # while no utterance is open: (energy, voiced) of the frames before the ring, up to
        # lookback_ms and never before the last utterance's end
        self._before: collections.deque[tuple[float, bool]] = collections.deque(
            maxlen=max(1, options.lookback_ms // options.frame_ms)
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self._clock = 0  # samples consumed into frames so far
        self._frames: list[tuple[int, bool, float]] = []  # (length, voiced, energy) of the open utterance
        self._start = 0
        self._triggered = False
        self._last_voiced = 0  # end of the last voiced frame

    @property
    def open_start(self) -> int | None:
        """Where the utterance still open began, or None."""
        return self._start if self._triggered else None

    def process(self, samples: np.ndarray, end: bool = False) -> Boundaries:
        """One request of the `vad` model: the utterances this audio closed (all of them at
        the stream's end) and the one still open."""
        closed = self.feed(samples) if len(samples) else []
        if end:
            return Boundaries(tuple(closed + self.flush()))
        ongoing = Ongoing(self._start, self._last_voiced) if self._triggered else None
        return Boundaries(tuple(closed), ongoing)

    @property
    def samples_seen(self) -> int:
        return self._clock + len(self._pending)

    def feed(self, samples: np.ndarray) -> list[Utterance]:
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        closed: list[Utterance] = []
        usable = len(self._pending) // self._frame * self._frame
        for offset in range(0, usable, self._frame):
            utterance = self._push(self._pending[offset : offset + self._frame])
            if utterance is not None:
                closed.append(utterance)
        self._pending = self._pending[usable:]
        return closed

    def flush(self) -> list[Utterance]:
        """Ends the stream: the open utterance (and any tail) is returned."""
        closed = []
        if self._triggered:
            if len(self._pending):
                self._frames.append((len(self._pending), False, 0.0))
                self._clock += len(self._pending)
            utterance = self._close(len(self._frames))
            if utterance is not None:
                closed.append(utterance)
        self._pending = np.zeros(0, dtype=np.float32)
        self._ring.clear()
        self._before.clear()
        self._triggered = False
        return closed

    def _push(self, frame: np.ndarray) -> Utterance | None:
        is_speech = self._vad.is_speech(float_to_pcm16(frame).tobytes(), SAMPLE_RATE_HZ)
        energy = float(np.mean(frame * frame))
        self._clock += len(frame)
        if is_speech:
            self._last_voiced = self._clock
        opts = self.options
        if not self._triggered and len(self._ring) == self._ring_frames and opts.lookback_ms:
            self._before.append(self._ring[0])  # about to leave the ring
        self._ring.append((energy, is_speech))
        if not self._triggered:
            if sum(voiced for _, voiced in self._ring) > opts.trigger_ratio * self._ring_frames:
                self._triggered = True  # the ring becomes the utterance's pre-roll
                onset = self._onset()
                self._start = self._clock - (len(self._ring) + len(onset)) * self._frame
                self._frames = [(self._frame, voiced, e) for e, voiced in onset + list(self._ring)]
                self._ring.clear()
                self._before.clear()
            return None
        self._frames.append((len(frame), is_speech, energy))
        if (
            sum(not voiced for _, voiced in self._ring) > opts.release_ratio * self._ring_frames
            or self._long_and_pausing()
        ):
            self._triggered = False
            self._ring.clear()
            return self._close(len(self._frames))
        if len(self._frames) * self._frame >= opts.max_utterance_s * SAMPLE_RATE_HZ:
            return self._close(self._quietest_cut())
        return None

    def _onset(self) -> list[tuple[float, bool]]:
        """The frames before the ring that belong to the speech it triggered on: back to the
        earliest voiced frame with no unvoiced gap longer than lookback_gap_ms after it."""
        before = list(self._before)
        max_gap = self.options.lookback_gap_ms // self.options.frame_ms
        first, gap = len(before), 0
        for i in range(len(before) - 1, -1, -1):
            if before[i][1]:
                first, gap = i, 0
            else:
                gap += 1
                if gap > max_gap:
                    break
        return before[first:]

    def _long_and_pausing(self) -> bool:
        opts = self.options
        if not opts.split_after_s or len(self._frames) * self._frame < opts.split_after_s * SAMPLE_RATE_HZ:
            return False
        pause = opts.split_pause_ms // opts.frame_ms
        return len(self._frames) > pause and not any(voiced for _, voiced, _ in self._frames[-pause:])

    def _quietest_cut(self) -> int:
        """Number of frames to keep in a forced cut: after the quietest recent frame."""
        search = max(1, int(self.options.cut_search_s * 1000 / self.options.frame_ms))
        first = max(1, len(self._frames) - search)
        energies = [energy for _, _, energy in self._frames[first:]]
        return first + int(np.argmin(energies)) + 1

    def _close(self, keep: int) -> Utterance | None:
        frames, self._frames = self._frames[:keep], self._frames[keep:]
        start = self._start
        end = start + sum(length for length, _, _ in frames)
        self._start = end
        voiced = [i for i, (_, is_speech, _) in enumerate(frames) if is_speech]
        if not frames or len(voiced) * self.options.frame_ms < self.options.min_speech_ms:
            return None
        speech_end = start + sum(length for length, _, _ in frames[: voiced[-1] + 1])
        return Utterance(start, end, speech_end)
