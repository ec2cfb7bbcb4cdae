import numpy as np
import pytest

from livetranslate.audio import pcm16_to_float, read_audio, resample
from livetranslate.quality.samples import load_reference
from livetranslate.stages.vad import Segmenter, VadOptions


def load16k(path):
    pcm, rate = read_audio(path)
    return resample(pcm16_to_float(pcm), rate)


def segment(x, chunk, options=VadOptions()):
    seg = Segmenter(options)
    out = []
    for i in range(0, len(x), chunk):
        out += seg.feed(x[i : i + chunk])
    return out + seg.flush()


def test_one_segment_per_sentence_with_accurate_boundaries(audio_files):
    x = load16k(audio_files["speech"])
    ref = load_reference(audio_files["speech"])
    segments = segment(x, 1600)
    assert len(segments) == len(ref)
    for s, r in zip(segments, ref):
        assert abs(s.start_s - r.start_s) < 0.35, (s.start_s, r.start_s)
        # the hangover (padding) follows the speech
        assert r.end_s - 0.35 < s.speech_end_sample / 16000 <= s.end_s < r.end_s + 0.6


def test_chunk_size_does_not_change_segments(audio_files):
    x = load16k(audio_files["speech"])[: 16000 * 10]
    a = segment(x, 160)
    b = segment(x, 7777)
    assert [(s.start_sample, s.end_sample) for s in a] == [(s.start_sample, s.end_sample) for s in b]


def test_silence_gives_nothing(audio_files):
    assert segment(load16k(audio_files["silence"]), 1600) == []


def test_loud_noise_passes_the_vad(audio_files):
    """The noise file reaches Whisper (so the end-to-end test of it checks the speech
    filter, not the VAD): most of its bursts open an utterance."""
    assert len(segment(load16k(audio_files["noise"]), 1600)) >= 4


def test_max_length_cuts_cleanly_and_loses_nothing(audio_files):
    x = load16k(audio_files["speech"])
    # no pauses: the sentences back to back, 20+ s of continuous speech
    speech = np.concatenate([x[s.start_sample : s.end_sample] for s in segment(x, 1600)])
    opts = VadOptions(max_utterance_s=5.0)
    segments = segment(speech, 1600, opts)
    assert len(segments) >= 4
    assert all(s.end_s - s.start_s <= 5.0 + 1e-6 for s in segments)
    for a, b in zip(segments, segments[1:]):
        assert b.start_sample >= a.end_sample  # no overlap, nothing repeated


def test_flush_returns_the_open_utterance(audio_files):
    x = load16k(audio_files["speech"])
    ref = load_reference(audio_files["speech"])
    seg = Segmenter()
    cut = int((ref[0].start_s + 1.5) * 16000)  # in the middle of the first sentence
    assert seg.feed(x[:cut]) == []
    flushed = seg.flush()
    assert len(flushed) == 1 and flushed[0].end_sample == cut


def test_bad_options():
    with pytest.raises(ValueError):
        VadOptions(frame_ms=25)
    with pytest.raises(ValueError):
        VadOptions(mode=7)
    with pytest.raises(ValueError):
        VadOptions(lookback_ms=-1)


def test_process_marks_an_open_utterance(audio_files):
    from livetranslate.audio import read_audio, resample

    pcm, rate = read_audio(audio_files["speech"])
    audio = resample(pcm.astype(np.float32) / 32768, rate)
    seg = Segmenter(VadOptions())
    first = seg.process(audio[: int(2.0 * 16000)])  # the first sentence is still being spoken
    assert first.closed == () and 0 < first.ongoing.start_sample < 16000
    assert first.ongoing.start_sample < first.ongoing.speech_end_sample <= 2 * 16000
    rest = seg.process(audio[int(2.0 * 16000) :], end=True)
    assert rest.closed and rest.ongoing is None
    assert rest.closed[0].start_sample == first.ongoing.start_sample


class ScriptedVad:
    """webrtcvad's verdicts from a script: one character per frame, '#' voiced."""

    def __init__(self, script: str):
        self.verdicts = iter(script)

    def is_speech(self, frame, rate):
        return next(self.verdicts) == "#"


def scripted(script: str, options=VadOptions()):
    """(start frame, end frame) of each utterance the segmenter closes on that script."""
    seg = Segmenter(options)
    seg._vad = ScriptedVad(script)
    frame = 16000 * options.frame_ms // 1000
    utterances = seg.feed(np.full(len(script) * frame, 0.1, np.float32)) + seg.flush()
    return [(u.start_sample // frame, u.end_sample // frame) for u in utterances]


# silence, a choppy start of speech (bursts, gaps of 2-4 frames), then a run that triggers
CHOPPY = "." * 20 + "###..##...####....###.#" + "#" * 30 + "." * 20


def test_an_utterance_reaches_back_over_the_choppy_start_of_its_speech():
    trigger_run = CHOPPY.index("#" * 10)
    [(start, _)] = scripted(CHOPPY, VadOptions(lookback_ms=0))
    assert start == trigger_run  # the ring's pre-roll only: the bursts before it are lost
    [(start, _)] = scripted(CHOPPY)
    assert start == 20  # the first burst


def test_lookback_stops_at_a_long_gap_and_at_its_limit():
    # a blip, a gap longer than lookback_gap_ms (5 frames), then the speech
    [(start, _)] = scripted("." * 20 + "##" + "." * 6 + CHOPPY[20:])
    assert start == 28
    # bursts reaching further back than lookback_ms: cut at the limit
    opts = VadOptions(lookback_ms=300)  # 10 frames before the 10-frame ring
    [(start, _)] = scripted(CHOPPY, opts)
    assert start == CHOPPY.index("#" * 10) - 10


def test_lookback_never_reaches_into_the_utterance_before():
    first = "#" * 30 + "." * 10  # closes after 10 unvoiced frames
    second = "#.#.#" + "#" * 20 + "." * 20
    utterances = scripted("." * 10 + first + second)
    assert len(utterances) == 2
    assert utterances[1][0] >= utterances[0][1]


def test_a_long_utterance_closes_at_a_short_pause():
    turns = "." * 10 + "#" * 120 + "." * 6 + "#" * 40 + "." * 20  # 3.6 s, a 180 ms pause, 1.2 s
    assert len(scripted(turns)) == 1  # the pause is under the hangover
    split = VadOptions(split_after_s=3.0, split_pause_ms=150)
    first, second = scripted(turns, split)
    assert first[1] <= 10 + 120 + 6 <= second[0] + 10  # cut in the pause, the second keeps its start
    assert len(scripted("." * 10 + "#" * 60 + "." * 6 + "#" * 40 + "." * 20, split)) == 1  # 1.8 s: not yet long
