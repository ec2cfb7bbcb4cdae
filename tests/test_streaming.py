"""The streaming decoding policy (livetranslate/pipeline/streaming.py): which audio and text each
Whisper request gets, and how answers become committed text. Pure logic, no model."""

import numpy as np
import pytest

from livetranslate.pipeline.streaming import (
    AudioHistory,
    DecodeOptions,
    Plan,
    StreamDecoder,
    repeated_across_boundaries,
)
from livetranslate.stages.whisper import dedupe_boundary

SR = 16_000


def history_of(seconds: float, chunk: int = 1600) -> tuple[AudioHistory, np.ndarray]:
    x = np.arange(int(seconds * SR), dtype=np.float32)
    h = AudioHistory(keep_s=45)
    for i in range(0, len(x), chunk):
        h.append(x[i : i + chunk])
    return h, x


def test_history_slices_exactly_and_forgets_old_audio():
    h, x = history_of(60)
    assert h.end == len(x)
    assert np.array_equal(h.slice(50 * SR + 7, 55 * SR + 3), x[50 * SR + 7 : 55 * SR + 3])
    assert h.start > 10 * SR  # older than keep_s is gone, in whole chunks
    assert np.array_equal(h.slice(0, h.start + 10), x[h.start : h.start + 10])  # clipped, not shifted
    assert h.slice(100, 50).size == 0


def test_utterance_policy_gives_the_lead_in_and_the_previous_text():
    h, x = history_of(20)
    d = StreamDecoder(DecodeOptions(policy="utterance", lead_in_s=1.0, prompt_segments=2), "de")
    first = d.plan(h, 5000, 9000)
    assert np.array_equal(first.request.audio, x[0:9000])  # stream start: less lead-in
    assert first.request.prompt == "" and first.context_text == ""
    for i, text in enumerate(["eins", "zwei", "drei"]):
        d.commit(10_000 * (i + 1), 10_000 * (i + 1) + 5000, text)
    plan = d.plan(h, 52_000, 60_000)
    assert np.array_equal(plan.request.audio, x[36_000:60_000])
    assert plan.request.prompt == "zwei drei" and plan.request.prefix == ""
    assert plan.context_text == ""  # the lead-in (36k-52k) does not reach the last utterance (35k)
    assert d.plan(h, 40_000, 44_000).context_text == "drei"  # it does here: drop repeated words


def test_context_policy_hears_committed_utterances_again_with_their_text_as_prefix():
    h, x = history_of(40)
    d = StreamDecoder(DecodeOptions(policy="context", context_s=15, max_window_s=28, prompt_segments=1), "de")
    d.commit(1 * SR, 3 * SR, "Hallo zusammen.")
    d.commit(4 * SR, 8 * SR, "Wir beginnen.")
    d.commit(10 * SR, 14 * SR, "Erster Punkt.")
    plan = d.plan(h, 20 * SR, 23 * SR)
    # 4 s is 16 s before the new utterance: beyond context_s; 10 s is within
    assert plan.request.prefix == "Erster Punkt." == plan.context_text
    assert plan.request.prompt == "Wir beginnen."
    assert np.array_equal(plan.request.audio, x[10 * SR : 23 * SR])
    assert plan.request.beam_size == 0 and not plan.partial


def test_context_window_stays_under_30_s_and_never_spans_a_dropped_utterance():
    h, _ = history_of(40)
    d = StreamDecoder(DecodeOptions(policy="context", context_s=30, max_window_s=10), "de")
    d.commit(1 * SR, 3 * SR, "alt")
    d.commit(5 * SR, 7 * SR, "")  # the speech filter dropped it
    d.commit(8 * SR, 9 * SR, "neu")
    plan = d.plan(h, 10 * SR, 12 * SR)
    assert plan.request.prefix == "neu"  # "alt" is behind the dropped one
    assert len(plan.request.audio) == 4 * SR
    assert d.plan(h, 10 * SR, 19 * SR).request.prefix == ""  # 8 s..19 s would be 11 s > 10 s


def test_context_needs_the_audio_still_in_history():
    h = AudioHistory(keep_s=5)
    for _ in range(200):
        h.append(np.zeros(1600, np.float32))  # 20 s
    d = StreamDecoder(DecodeOptions(policy="context", context_s=15), "de")
    d.commit(2 * SR, 4 * SR, "vergessen")
    plan = d.plan(h, 18 * SR, 19 * SR)
    assert plan.request.prefix == "" and len(plan.request.audio) == 2 * SR  # utterance + lead-in


def test_partials_are_greedy_and_share_the_final_request_shape():
    h, _ = history_of(20)
    d = StreamDecoder(DecodeOptions(policy="context", partial_beam_size=1), "de")
    d.commit(2 * SR, 4 * SR, "Guten Morgen.")
    plan = d.plan(h, 5 * SR, 7 * SR, partial=True)
    assert plan.partial and plan.request.beam_size == 1 and plan.request.prefix == "Guten Morgen."


# Recorded answers of Whisper base on the bench meeting (context policy): the prefix
# forced, what came back after it, and what was committed.
RECORDED = [
    (
        "Hallo zusammen, ich eröffne jetzt die Sitzung.",
        "Als erstes schauen wir uns die Zahlen an.",
        "Als erstes schauen wir uns die Zahlen an.",
    ),
    (
        "Die Kosten sind leider auch gestiegen.",
        "auch gestiegen. Wir sollten prüfen, ob wir",
        "Wir sollten prüfen, ob wir",
    ),
    ("Ja, das mache ich gerne.", "Ja, das mache ich gerne.", ""),
]


@pytest.mark.parametrize("prefix,answer,committed", RECORDED)
def test_clean_keeps_only_the_new_words(prefix, answer, committed):
    d = StreamDecoder(DecodeOptions(), "de")
    assert d.clean(Plan(request=None, context_text=prefix), answer) == committed


def test_a_context_answer_that_is_empty_or_repeats_the_prefix_is_decoded_again_alone():
    from livetranslate.stages.whisper import AsrRequest

    d = StreamDecoder(DecodeOptions(), "de")
    plan = Plan(AsrRequest(np.zeros(10), "de", prefix="Der zweite Punkt auf der Tagesordnung."), "x")
    assert d.retry_without_context(plan, "")
    assert d.retry_without_context(plan, "Der zweite Punkt auf der Tagesordnung.")
    assert not d.retry_without_context(plan, "Das Design ist fast fertig.")
    assert not d.retry_without_context(Plan(AsrRequest(np.zeros(10), "de"), ""), "")


def test_a_context_answer_far_shorter_than_its_speech_is_decoded_again_and_the_longer_kept():
    from livetranslate.stages.whisper import AsrRequest

    d = StreamDecoder(DecodeOptions(), "de")
    plan = Plan(AsrRequest(np.zeros(10), "de", prefix="Die Kosten sind gestiegen."), "Die Kosten sind gestiegen.")
    first = "Vor allem wegen der Mieten."  # 27 characters: Whisper stopped after one sentence
    assert d.retry_without_context(plan, first, speech_s=10.0)
    assert not d.retry_without_context(plan, first, speech_s=2.5)  # short speech: not judged
    assert not d.retry_without_context(plan, first + " Der Gewinn liegt bei 214.000 Euro.", speech_s=10.0)
    assert not StreamDecoder(DecodeOptions(min_chars_per_s=0), "de").retry_without_context(plan, first, 10.0)
    assert not StreamDecoder(DecodeOptions(), "ja").retry_without_context(plan, "会議を始めます。", 10.0)
    alone = Plan(AsrRequest(np.zeros(10), "de"), "")
    assert d.prefer_retry(plan, first, alone, first + " Der Gewinn liegt bei 214.000 Euro.")
    assert not d.prefer_retry(plan, first, alone, "Mieten.")
    assert d.prefer_retry(plan, "", alone, "Mieten.")  # an empty answer is always replaced


def test_boundary_dedupe_keeps_casing_and_only_drops_a_true_overlap():
    assert dedupe_boundary("Wir planen den Start.", "den Start. Gibt es Fragen?") == "Gibt es Fragen?"
    assert dedupe_boundary("Wir planen den Start.", "Gibt es dazu Fragen?") == "Gibt es dazu Fragen?"


def test_repeats_across_segment_boundaries_are_found():
    assert repeated_across_boundaries(["a b c d e", "c d e f g", "h i"]) == ["c d e"]
    assert repeated_across_boundaries(["Das ist gut.", "Das ist gut."], min_words=3) == ["das ist gut"]
    assert repeated_across_boundaries(["eins zwei", "zwei drei"]) == []


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="policy"):
        DecodeOptions(policy="magic")
    with pytest.raises(ValueError, match="min_chars_per_s"):
        DecodeOptions(min_chars_per_s=-1)
    with pytest.raises(ValueError):
        DecodeOptions(max_window_s=31)
