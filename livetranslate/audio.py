"""PCM conversion, resampling to 16 kHz (soxr) and reading audio files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from livetranslate.protocol import SAMPLE_RATE_HZ


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0 - 1.0 / 32768) * 32768.0).astype(np.int16)


class StreamResampler:
    """Resamples a chunked mono stream to 16 kHz without seams between chunks."""

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE_HZ):
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


def resample(samples: np.ndarray, in_rate: int, out_rate: int = SAMPLE_RATE_HZ) -> np.ndarray:
    if in_rate == out_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), in_rate, out_rate, quality="HQ")


class AudioFileError(ValueError):
    """The file could not be read as audio."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Reads any file soundfile (libsndfile) or ffmpeg (PyAV) can decode.

    Returns mono int16 PCM at the file's own rate when soundfile reads it (the server
    resamples), else at 16 kHz decoded by PyAV.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        data, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
        return data.mean(axis=1).astype(np.int16) if data.shape[1] > 1 else data[:, 0], rate
    except soundfile.LibsndfileError:
        pass
    try:
        from faster_whisper.audio import decode_audio

        samples = decode_audio(str(path), sampling_rate=SAMPLE_RATE_HZ)
    except Exception:  # PyAV raises many kinds; all mean "not audio" here
        raise AudioFileError(f"{path}: not an audio file (neither libsndfile nor ffmpeg can decode it)") from None
    if samples.size == 0:
        raise AudioFileError(f"{path}: contains no audio")
    return float_to_pcm16(samples), SAMPLE_RATE_HZ


def chunks(samples: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(samples), size):
        yield samples[start : start + size]
