import numpy as np
import pytest

from livetranslate.audio import (
    AudioFileError,
    StreamResampler,
    chunks,
    float_to_pcm16,
    pcm16_to_float,
    read_audio,
    resample,
)


def tone(freq, rate, seconds=1.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)]


def test_pcm_round_trip_and_clipping():
    pcm = np.array([-32768, -1, 0, 1, 32767], np.int16)
    assert np.array_equal(float_to_pcm16(pcm16_to_float(pcm)), pcm)
    assert float_to_pcm16(np.array([2.0, -2.0], np.float32)).tolist() == [32767, -32768]


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_stream_resampler_matches_whole_signal(rate):
    x = tone(440, rate, 2.0)
    whole = resample(x, rate)
    stream = StreamResampler(rate)
    pieces = [stream.process(c) for c in chunks(x, 1234)] + [stream.process(np.zeros(0, np.float32), last=True)]
    streamed = np.concatenate(pieces)
    assert abs(len(streamed) - 32000) <= 2 and abs(len(whole) - 32000) <= 2
    assert abs(dominant_frequency(streamed, 16000) - 440) < 2
    n = min(len(whole), len(streamed))
    # No seams: the streamed signal equals the one-shot resampling away from the edges.
    assert np.max(np.abs(whole[1000 : n - 1000] - streamed[1000 : n - 1000])) < 1e-3


def test_16k_passes_through():
    x = tone(300, 16000)
    assert np.array_equal(StreamResampler(16000).process(x), x)


def test_read_audio(audio_files, tmp_path):
    pcm, rate = read_audio(audio_files["speech"])
    assert pcm.dtype == np.int16 and rate == 22050 and len(pcm) > rate * 10
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not audio\n" * 100)
    with pytest.raises(AudioFileError, match="not an audio file"):
        read_audio(bad)
    with pytest.raises(AudioFileError, match="no such file"):
        read_audio(tmp_path / "missing.wav")


def test_read_audio_through_ffmpeg(audio_files, tmp_path):
    import subprocess

    mp3 = tmp_path / "speech.m4a"  # AAC: libsndfile cannot, ffmpeg can
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(audio_files["speech"]), str(mp3)], check=True)
    pcm, rate = read_audio(mp3)
    ref, ref_rate = read_audio(audio_files["speech"])
    assert rate == 16000 and abs(len(pcm) / rate - len(ref) / ref_rate) < 0.1
