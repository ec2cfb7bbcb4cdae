"""The GE2E speaker encoder's input, as Resemblyzer 0.1.4 makes it (resemblyzer/audio.py,
hparams.py), in numpy: no librosa, no scipy.

- volume raised (never lowered) to -30 dBFS RMS;
- long silences trimmed: webrtcvad mode 3 on 30 ms windows, a moving average over 8 windows,
  voiced regions widened by 3 windows each side (so no silence over 6 windows stays);
- a mel power spectrogram (not a log-mel): 16 kHz, 25 ms Hann window (n_fft 400), 10 ms hop,
  centred frames with zero padding (librosa >= 0.10), |STFT|^2 through 40 Slaney mel filters
  (librosa.filters.mel's defaults: fmin 0, fmax 8 kHz, Slaney scale and area normalisation).
"""

from __future__ import annotations

import functools

import numpy as np
import webrtcvad

RATE_HZ = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s: one partial utterance
VAD_WINDOW = 480  # 30 ms
VAD_AVERAGE = 8
VAD_MAX_SILENCE = 6
NORM_DBFS = -30.0
INT16_MAX = 2**15 - 1


def normalize_volume(wav: np.ndarray, target_dbfs: float = NORM_DBFS) -> np.ndarray:
    """Raised to `target_dbfs` RMS; already louder stays as it is."""
    rms = float(np.sqrt(np.mean((wav.astype(np.float64) * INT16_MAX) ** 2)))
    if rms == 0.0:
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    if change < 0:
        return wav
    return (wav * 10 ** (change / 20)).astype(np.float32)


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate((np.zeros((width - 1) // 2), values, np.zeros(width // 2)))
    sums = np.cumsum(padded, dtype=float)
    sums[width:] = sums[width:] - sums[:-width]
    return sums[width - 1 :] / width


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """The samples in voiced regions (webrtcvad), silences longer than ~180 ms cut out."""
    wav = wav[: len(wav) - len(wav) % VAD_WINDOW]
    if not len(wav):
        return wav
    pcm = np.round(wav * INT16_MAX).astype(np.int16).tobytes()
    vad = webrtcvad.Vad(3)
    flags = np.array(
        [vad.is_speech(pcm[i * 2 : (i + VAD_WINDOW) * 2], RATE_HZ) for i in range(0, len(wav), VAD_WINDOW)],
        dtype=float,
    )
    mask = np.round(_moving_average(flags, VAD_AVERAGE)).astype(bool)
    # scipy.ndimage.binary_dilation with a centred structure of VAD_MAX_SILENCE + 1 ones
    # (centred by hand: numpy's mode="same" returns the kernel's length for a shorter input)
    full = np.convolve(mask.astype(float), np.ones(VAD_MAX_SILENCE + 1), mode="full")
    start = VAD_MAX_SILENCE // 2
    mask = full[start : start + len(mask)] > 0.5
    return wav[np.repeat(mask, VAD_WINDOW)]


def preprocess(wav: np.ndarray) -> np.ndarray:
    """Resemblyzer's preprocess_wav for 16 kHz float audio: louder, long silences out."""
    wav = np.asarray(wav, dtype=np.float32)
    return trim_long_silences(normalize_volume(wav))


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """The Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mel[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_part = mel >= 15.0
    hz[log_part] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_part] - 15.0))
    return hz


@functools.cache
def mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1): librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)."""
    fft_hz = np.linspace(0, RATE_HZ / 2, N_FFT // 2 + 1)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([RATE_HZ / 2]))[0], N_MELS + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    weights = np.zeros((N_MELS, len(fft_hz)))
    for i in range(N_MELS):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2 : N_MELS + 2] - mel_hz[:N_MELS]))[:, None]
    return weights.astype(np.float32)


@functools.cache
def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) float32 mel power; frames = 1 + len(wav) // HOP."""
    padded = np.pad(np.asarray(wav, dtype=np.float32), N_FFT // 2)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0])
    )
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2
    return (power.astype(np.float32) @ mel_filters().T).astype(np.float32)


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> list[tuple[int, int]]:
    """Resemblyzer's compute_partial_slices: (start, stop) mel frames of the partial utterances
    of PARTIAL_FRAMES each, one every 1/rate s (77 frames at 1.3: about half overlapping); the
    last one kept if it covers min_coverage of its window. At least one."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((RATE_HZ / rate) / HOP))
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"rate {rate} gives a step of {step} frames")
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return [(s, s + PARTIAL_FRAMES) for s in starts]


def partial_mels(wav: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray:
    """(partials, PARTIAL_FRAMES, N_MELS): the windows embed_utterance feeds the network, the
    waveform zero-padded to cover the last one."""
    slices = partial_slices(len(wav), rate, min_coverage)
    needed = slices[-1][1] * HOP
    if needed >= len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    mel = mel_spectrogram(wav)
    return np.stack([mel[a:b] for a, b in slices])
