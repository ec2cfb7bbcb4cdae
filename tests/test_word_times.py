"""Word times as plain logic: Whisper's alignment path into words (the prefix's dropped,
punctuation folded in, words stretched over a pause cut back, the edges snapped to where
the speech is), matched to the text a transcript carries, and how they travel (tensors,
JSON, stored events, subtitles)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livetranslate.pipeline.word_times import words_for_text
from livetranslate.present.cues import cues_for
from livetranslate.protocol import Event, EventKind
from livetranslate.stages.whisper import Transcription
from livetranslate.stages.whisper.alignment import FRAMES_PER_S, snap_to_speech, word_times
from livetranslate.store.files import _event_from_dict
from livetranslate.triton import codecs
from livetranslate.words import Word, words_from_json, words_to_json


def path_for(token_frames: list[int]) -> list[tuple[int, int]]:
    """A monotonic alignment path reaching token k at frame token_frames[k]."""
    out = []
    for k, frame in enumerate(token_frames):
        end = token_frames[k + 1] if k + 1 < len(token_frames) else frame + 1
        out += [(k, f) for f in range(frame, max(frame + 1, end))]
    return out


def test_words_start_where_the_path_reaches_their_first_token():
    # " Guten" " Mor" "gen" "," " Welt" "." <eot>
    words = [" Guten", " Morgen", ",", " Welt", ".", "<|endoftext|>"]
    tokens = [[1], [2, 3], [4], [5], [6], [7]]
    frames = [10, 30, 40, 55, 60, 80, 82]  # token k reached at this frame
    found = word_times(words, tokens, path_for(frames), [0.9] * 7, offset_s=1.0)
    assert [w.word for w in found] == [" Guten", " Morgen,", " Welt."]
    assert found[0].start_s == pytest.approx(1.0 + 10 / FRAMES_PER_S)
    assert found[1].start_s == pytest.approx(1.0 + 30 / FRAMES_PER_S)
    # a word ends where the path reaches the next word; its punctuation adds nothing
    assert found[1].end_s == pytest.approx(1.0 + 55 / FRAMES_PER_S)
    assert found[2].end_s == pytest.approx(1.0 + 80 / FRAMES_PER_S)


def test_the_prefix_words_are_dropped():
    words = [" Hallo", " Welt", " und", " mehr", "<|endoftext|>"]
    tokens = [[1], [2], [3], [4], [5]]
    found = word_times(words, tokens, path_for([0, 10, 20, 30, 40]), [1.0] * 5, skip_tokens=2)
    assert [w.word for w in found] == [" und", " mehr"]


def test_a_word_stretched_over_a_pause_is_cut_back():
    # the first word spans 3 s of silence before it: the path began at the window's start
    words = [" Heute", " ist", " ein", " guter", " Tag.", "<|endoftext|>"]
    tokens = [[1], [2], [3], [4], [5], [6]]
    frames = [0, 150, 165, 180, 200, 220]
    found = word_times(words, tokens, path_for(frames), [1.0] * 6)
    typical = 2 * 0.4  # twice the median word (3 s, 0.3, 0.3, 0.4, 0.4)
    assert found[0].end_s - found[0].start_s == pytest.approx(typical)
    assert found[0].end_s == pytest.approx(3.0)


def test_opening_punctuation_joins_the_next_word():
    words = [' "', "Ja", '"', " sagt", " er.", "<|endoftext|>"]
    tokens = [[1], [2], [3], [4], [5], [6]]
    found = word_times(words, tokens, path_for([0, 5, 10, 15, 20, 25]), [1.0] * 6)
    assert [w.word.strip() for w in found] == ['"Ja"', "sagt", "er."]


def test_the_edges_snap_to_the_speech():
    rate = 16_000
    audio = np.random.default_rng(0).normal(0, 1e-4, 3 * rate).astype(np.float32)
    audio[int(1.2 * rate) : int(2.1 * rate)] += 0.3 * np.sin(np.arange(int(0.9 * rate)) * 0.2)
    words = (Word(" eins", 0.0, 1.5, 1.0), Word(" zwei.", 1.5, 2.9, 1.0))
    snapped = snap_to_speech(words, audio, rate)
    assert snapped[0].start_s == pytest.approx(1.2, abs=0.02)
    assert snapped[1].end_s == pytest.approx(2.1, abs=0.02)
    assert snapped[0].end_s == 1.5 and snapped[1].start_s == 1.5  # the inside is the alignment's
    assert snap_to_speech(words, np.zeros(10, np.float32), rate) == words  # too short to tell


def test_the_texts_words_take_the_times_of_the_words_whisper_said():
    heard = [Word(" Wir", 0.5, 0.7), Word(" haben", 0.7, 1.0), Word(" zwanzig", 1.0, 1.5), Word(" Prozent.", 1.5, 2.0)]
    # numbers written as digits: "zwanzig Prozent" became "20 %"
    found = words_for_text("Wir haben 20 %.", heard, 10.0, (10.2, 12.5))
    assert [w.word for w in found] == ["Wir", "haben", "20", "%."]
    assert found[0].start_s == 10.5 and found[1].end_s == 11.0
    assert found[2].start_s == 11.0 and found[3].end_s == 12.0  # the run shares the run's time


def test_words_stay_inside_the_utterance_and_go_forward():
    heard = [Word(" Ende", 0.0, 0.3), Word(" der", 0.1, 0.2), Word(" Rede", 5.0, 9.0)]
    found = words_for_text("Ende der Rede", heard, 0.0, (0.2, 4.0))
    assert [w.start_s for w in found] == sorted(w.start_s for w in found)
    assert all(0.2 <= w.start_s <= w.end_s <= 4.0 for w in found)


def test_no_times_are_invented_without_whisper_s():
    assert words_for_text("Guten Tag", (), 0.0, (0.0, 1.0)) == ()
    assert words_for_text("", [Word("a", 0, 1)], 0.0, (0.0, 1.0)) == ()


@given(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
    st.lists(st.tuples(st.text(min_size=1, max_size=12), st.floats(0, 30), st.floats(0, 3)), max_size=30),
)
def test_one_word_per_word_of_the_text_whatever_whisper_said(text, said):
    heard = [Word(w, start, start + length) for w, start, length in said]
    found = words_for_text(text, heard, 1.0, (1.0, 20.0))
    if heard and any(w.strip() for w, _, _ in said) and text.split():
        assert [w.word for w in found] == text.split()
        assert all(1.0 <= w.start_s <= w.end_s <= 20.0 for w in found)
        assert [w.start_s for w in found] == sorted(w.start_s for w in found)


def test_words_travel_through_tensors_json_and_the_store():
    words = (Word("Grüß", 1.0, 1.25, 0.9), Word("Gott.", 1.25, 1.75, 0.5))
    assert words_from_json(words_to_json(words)) == words
    event = Event(EventKind.TRANSCRIPT, "Grüß Gott.", 3, 1.0, 2.0, "de", words=words)
    assert Event.from_tensors(event.to_tensors().get) == event
    stored = event.to_dict()
    assert stored["words"][0] == {"word": "Grüß", "start_s": 1.0, "end_s": 1.25, "probability": 0.9}
    assert _event_from_dict(stored) == event
    assert "words" not in Event(EventKind.TRANSLATION, "Hello.", 3).to_dict()  # only a transcript's
    result = Transcription("Grüß Gott.", "de", 0.1, -0.2, words=words)
    assert codecs.transcription_from_tensors(codecs.transcription_to_tensors(result).get).words == words
    with pytest.raises(ValueError):
        words_from_json("[[1, 2]]")


def test_subtitle_cues_start_and_end_where_their_words_were_said():
    text = "Heute sprechen wir über das neue Projekt, und danach über den Zeitplan für das nächste Quartal."
    split = text.split()
    words = tuple(Word(w, 10.0 + i * 0.4, 10.0 + i * 0.4 + 0.3) for i, w in enumerate(split))
    timed = cues_for(text, 9.5, 17.0, words)
    assert len(timed) >= 2
    assert timed[0].start_s == 10.0  # the first word, not the utterance's padded start
    second_first_word = len(timed[0].text.split())
    assert timed[1].start_s == pytest.approx(words[second_first_word].start_s)
    assert cues_for(text, 9.5, 17.0, words[:3])[0].start_s == 9.5  # words that do not match: by length
