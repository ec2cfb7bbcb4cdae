"""The natural meeting recording (livetranslate/quality/samples_natural.py): what it claims to hold is
measured on the written file, not taken from the generator's parameters."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from livetranslate.quality import samples, samples_glossary
from livetranslate.quality.evaluation import normalize
from livetranslate.quality.samples_natural import (
    JOINED_PAUSE_S,
    LEAD_S,
    MEETING,
    SPEAKERS,
    TURN_PAUSE_S,
    load_reference,
    make_natural,
    rms_db,
)

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE_S = 0.002  # references are rounded to milliseconds


@pytest.fixture(scope="module")
def natural() -> dict[str, Path]:
    return make_natural(ROOT / ".cache" / "test-audio")


@pytest.fixture(scope="module")
def meeting(natural):
    audio, rate = soundfile.read(str(natural["natural"]), dtype="float32")
    return audio, rate, load_reference(natural["natural"])


def window_db(audio, rate, start_s, end_s) -> float:
    return rms_db(audio[int(start_s * rate) : int(end_s * rate)])


def noise_db(audio, rate) -> float:
    """The noise alone: before the first word and after the last."""
    edge = int((LEAD_S - 0.1) * rate)
    return rms_db(np.concatenate([audio[:edge], audio[-edge:]]))


def test_the_text_is_new_and_says_what_the_reference_writes():
    old = set(samples.SENTENCES_DE + samples.MEETING_DE + samples_glossary.TERMS_DE)
    assert not old & {line.de for line in MEETING}
    assert 36 <= len(MEETING) <= 48 and all(line.en for line in MEETING)
    # where the synthesizer reads other words than the reference writes, they say the same
    respelled = [line for line in MEETING if line.spoken]
    assert len(respelled) >= 8
    for line in respelled:
        assert normalize(line.de, numbers=True) == normalize(line.spoken, numbers=True), line.de
    # numbers, dates and times in the text
    assert sum(any(c.isdigit() for c in line.de) for line in MEETING) >= 15
    assert any(":" in line.de for line in MEETING) and any("%" in line.de for line in MEETING)


def test_four_voices_a_few_minutes(natural, meeting):
    audio, rate, utterances = meeting
    assert rate == 16_000 and soundfile.info(str(natural["natural"])).subtype == "PCM_16"
    assert 180 <= len(audio) / rate <= 240
    assert {u.voice for u in utterances} == {s.voice for s in SPEAKERS.values()}
    assert len({u.speaker for u in utterances}) == 4
    assert [(u.text_de, u.text_en) for u in utterances] == [(line.de, line.en) for line in MEETING]
    for name in {u.speaker for u in utterances}:  # everyone gets a fair share
        assert sum(u.end_s - u.start_s for u in utterances if u.speaker == name) >= 20


def test_pauses_and_the_long_stretch(meeting):
    _, _, utterances = meeting
    gaps = [b.start_s - a.end_s for a, b in zip(utterances, utterances[1:])]
    for gap, line in zip(gaps, MEETING[1:]):
        low, high = JOINED_PAUSE_S if line.joined else TURN_PAUSE_S
        assert low - TOLERANCE_S <= gap <= high + TOLERANCE_S, (gap, line.de)
    turns = [g for g, a, b in zip(gaps, utterances, utterances[1:]) if a.speaker != b.speaker]
    assert len(turns) >= 15 and all(0.15 - TOLERANCE_S <= g <= 0.5 + TOLERANCE_S for g in turns)
    # the longest stretch of one speaker with no pause longer than a breath
    longest, start = 0.0, 0
    for i in range(1, len(utterances) + 1):
        if (
            i == len(utterances)
            or gaps[i - 1] >= TURN_PAUSE_S[0] - TOLERANCE_S
            or utterances[i].speaker != utterances[start].speaker
        ):
            longest = max(longest, utterances[i - 1].end_s - utterances[start].start_s)
            start = i
    assert 25 <= longest <= 40


def test_noise_is_twenty_db_below_the_voices(meeting):
    audio, rate, utterances = meeting
    mask = np.zeros(len(audio), bool)
    for u in utterances:
        mask[int(u.start_s * rate) : int(u.end_s * rate)] = True
    snr = rms_db(audio[mask]) - noise_db(audio, rate)
    assert 18.5 <= snr <= 21.5, snr
    for name in {u.speaker for u in utterances}:  # nobody drowns, nobody shouts
        own = np.zeros(len(audio), bool)
        for u in utterances:
            if u.speaker == name:
                own[int(u.start_s * rate) : int(u.end_s * rate)] = True
        assert 15 <= rms_db(audio[own]) - noise_db(audio, rate) <= 25, name
    assert np.abs(audio).max() < 0.99  # no clipping
    # steady: the noise before the first word is as loud as after the last
    edge = int((LEAD_S - 0.1) * rate)
    assert abs(rms_db(audio[:edge]) - rms_db(audio[-edge:])) < 1.5


def test_references_line_up_with_the_audio(meeting):
    audio, rate, utterances = meeting
    noise = noise_db(audio, rate)
    assert abs(len(audio) / rate - (utterances[-1].end_s + LEAD_S)) < 0.01
    assert abs(utterances[0].start_s - LEAD_S) < TOLERANCE_S
    previous_end = 0.0
    for u in utterances:
        assert previous_end <= u.start_s < u.end_s
        previous_end = u.end_s
        # a plausible pace for the words said (numbers spelled out), short replies included
        words = len(normalize(u.text_de, numbers=True).split())
        assert 0.2 * words <= u.end_s - u.start_s <= 0.6 * words + 0.3, u.text_de
        assert window_db(audio, rate, u.start_s, u.start_s + 0.3) - noise > 8, u.text_de  # speech starts
        assert window_db(audio, rate, u.end_s - 0.3, u.end_s) - noise > 6, u.text_de  # and is still there
        # just before it only noise (and what is left of the room's echo)
        assert window_db(audio, rate, u.start_s - 0.06, u.start_s - 0.01) - noise < 6, u.text_de


def test_the_short_cut_is_the_start_of_the_meeting(natural, meeting):
    audio, rate, utterances = meeting
    short, short_rate = soundfile.read(str(natural["natural_short"]), dtype="float32")
    kept = load_reference(natural["natural_short"])
    assert short_rate == rate and 25 <= len(short) / rate <= 35
    cut_at = int((kept[-1].end_s + 0.07) * rate)  # the pause after the last sentence is >= 150 ms
    assert np.array_equal(short[:cut_at], audio[:cut_at])
    assert kept == utterances[: len(kept)]
    assert len({u.voice for u in kept}) == 4
    # it ends in the noise alone, as long as the lead-in
    assert len(short) / rate - kept[-1].end_s >= LEAD_S - 0.05 + 0.07
    assert abs(noise_db(short, rate) - noise_db(audio, rate)) < 1.0


@pytest.mark.slow
def test_made_again_it_is_the_same_bytes(tmp_path, natural):
    def digest(folder: Path) -> dict[str, str]:
        files = make_natural(folder)
        return {
            p.name + suffix: hashlib.sha256(p.with_suffix(suffix).read_bytes()).hexdigest()
            for p in files.values()
            for suffix in (".wav", ".json")
        }

    first = digest(tmp_path / "a")
    assert first == digest(tmp_path / "b")
    assert first == digest(natural["natural"].parent)  # the cached copy the tests read


def bench_recordings(smoke: bool, folder: Path):
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from common import recordings

    return recordings(smoke, folder)


@pytest.mark.parametrize("smoke", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_the_benches_get_both_recordings_with_their_references(smoke, natural):
    espeak, spoken = bench_recordings(smoke, natural["natural"].parent)
    assert (espeak.name, spoken.name) == ("espeak", "natural")
    for recording in (espeak, spoken):
        info = soundfile.info(str(recording.path))
        assert len(recording.german) == len(recording.english) == len(recording.spans_s) > 0
        assert recording.spans_s[-1][1] < info.duration
        assert recording.reference.startswith(recording.german[0])
    assert spoken.path == natural["natural_short" if smoke else "natural"]
    assert spoken.german == [line.de for line in MEETING[: len(spoken.german)]]
    assert spoken.english == [line.en for line in MEETING[: len(spoken.german)]]
    assert "4 voices" in spoken.about
