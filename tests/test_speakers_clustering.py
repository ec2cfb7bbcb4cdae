"""Online speaker clustering (livetranslate.stages.speakers.clustering) with synthetic embeddings."""

import time

import numpy as np
import pytest

from livetranslate.stages.speakers.clustering import OnlineSpeakers, best_mapping_accuracy

DIM = 256


def voices(n, seed=0):
    """n random directions, nearly orthogonal in 256 dimensions."""
    v = np.random.default_rng(seed).normal(size=(n, DIM))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def utterance(voice, rng, spread=0.35):
    """An embedding near the voice: cosine about 0.9 to it."""
    e = voice + rng.normal(scale=spread / np.sqrt(DIM), size=DIM)
    return e / np.linalg.norm(e)


def test_each_voice_gets_its_own_label_in_order_of_appearance():
    rng = np.random.default_rng(1)
    v = voices(3)
    order = [0, 0, 1, 2, 1, 0, 2, 2, 1, 0]
    speakers = OnlineSpeakers(threshold=0.7)
    labels = [speakers.assign(utterance(v[i], rng), 2.0).label for i in order]
    assert labels == [f"S{i + 1}" for i in order]
    assert speakers.labels == ["S1", "S2", "S3"]


def test_a_new_speaker_is_flagged_and_centroids_are_running_means():
    rng = np.random.default_rng(2)
    v = voices(2)
    speakers = OnlineSpeakers(threshold=0.7)
    first = speakers.assign(utterance(v[0], rng), 2.0)
    assert first.new_speaker and first.label == "S1"
    again = speakers.assign(utterance(v[0], rng), 2.0)
    assert not again.new_speaker and 0.7 <= again.similarity < 1.0
    assert speakers.speakers[0].count == 2
    assert speakers.assign(utterance(v[1], rng), 2.0).new_speaker


def test_a_short_utterance_takes_its_context_label_and_leaves_centroids_alone():
    rng = np.random.default_rng(3)
    v = voices(2)
    speakers = OnlineSpeakers(threshold=0.7, min_duration_s=1.0)
    speakers.assign(utterance(v[0], rng), 3.0)
    before = speakers.speakers[0].total.copy()
    # a short "Ja." that sounds like nobody seen yet: no new speaker, the previous label
    short = speakers.assign(utterance(v[1], rng), 0.4)
    assert short.label == "S1" and short.from_context
    assert len(speakers.speakers) == 1 and np.array_equal(speakers.speakers[0].total, before)
    assert speakers.history == ["S1", "S1"]


def test_a_short_utterance_that_clearly_matches_another_known_speaker_takes_that_label():
    rng = np.random.default_rng(8)
    v = voices(2)
    speakers = OnlineSpeakers(threshold=0.7)
    speakers.assign(utterance(v[0], rng), 2.0)
    speakers.assign(utterance(v[1], rng), 2.0)
    short = speakers.assign(utterance(v[0], rng), 0.4)  # "Ja." from S1 after S2
    assert short.label == "S1" and not short.from_context and not short.new_speaker


def test_recheck_moves_an_early_utterance_to_the_centroid_it_now_fits():
    rng = np.random.default_rng(9)
    v = voices(2)
    between = v[0] * 0.5 + v[1] * 0.87  # nearer to S2's voice, but S2 does not exist yet
    speakers = OnlineSpeakers(threshold=0.45, merge_threshold=0.95)
    for _ in range(4):
        speakers.assign(utterance(v[0], rng, 0.05), 2.0)
    assert speakers.assign(between / np.linalg.norm(between), 2.0).label == "S1"
    for _ in range(3):
        assert speakers.assign(utterance(v[1], rng, 0.05), 2.0).label == "S2"
    result = speakers.recheck()
    assert result.relabelled == {4: "S2"} and speakers.history == ["S1"] * 4 + ["S2"] * 4


def test_the_first_utterance_gets_a_label_however_short():
    speakers = OnlineSpeakers()
    assert speakers.assign(voices(1)[0], 0.3).label == "S1"


def test_recheck_merges_close_centroids_and_says_which_lines_change():
    rng = np.random.default_rng(4)
    v = voices(2)
    # one voice split in two: the second start is far from the first utterance alone
    near = v[0] * 0.8 + v[1] * 0.6
    speakers = OnlineSpeakers(threshold=0.85, merge_threshold=0.7)
    assert speakers.assign(utterance(v[0], rng, 0.1), 2.0).label == "S1"
    assert speakers.assign(utterance(near, rng, 0.1), 2.0).label == "S2"
    # the same voice keeps coming in between the two: the centroids move together
    speakers.assign(utterance((v[0] + near) / 2, rng, 0.1), 2.0)
    before = list(speakers.history)
    result = speakers.recheck()
    assert [(m.gone, m.kept) for m in result.merges] == [("S2", "S1")]
    assert 1 in result.merges[0].utterances and 0 not in result.merges[0].utterances
    assert speakers.history == ["S1"] * 3 and speakers.labels == ["S1"]
    assert result.relabelled == {n: "S1" for n, label in enumerate(before) if label != "S1"}
    assert speakers.recheck().merges == [] and speakers.recheck().relabelled == {}


def test_recheck_leaves_distinct_speakers_alone():
    rng = np.random.default_rng(5)
    v = voices(3)
    speakers = OnlineSpeakers(threshold=0.7, merge_threshold=0.8)
    for i in [0, 1, 2, 0, 1, 2]:
        speakers.assign(utterance(v[i], rng), 2.0)
    result = speakers.recheck()
    assert result.merges == [] and result.relabelled == {} and len(speakers.labels) == 3


def test_labels_are_never_reused_after_a_merge():
    rng = np.random.default_rng(6)
    v = voices(3)
    speakers = OnlineSpeakers(threshold=1.1, merge_threshold=0.8)  # every utterance a new speaker
    speakers.assign(utterance(v[0], rng, 0.05), 2.0)
    speakers.assign(utterance(v[0], rng, 0.05), 2.0)
    assert [(m.gone, m.kept) for m in speakers.recheck().merges] == [("S2", "S1")]
    assert speakers.assign(utterance(v[1], rng), 2.0).label == "S3"


def test_the_hint_caps_the_count_and_merges_down_to_it():
    rng = np.random.default_rng(7)
    v = voices(3)
    speakers = OnlineSpeakers(threshold=0.7, merge_threshold=0.95, num_speakers=2)
    labels = [speakers.assign(utterance(v[i], rng), 2.0).label for i in [0, 1, 2, 2]]
    assert labels[:2] == ["S1", "S2"] and set(labels[2:]) <= {"S1", "S2"}
    assert len(speakers.labels) == 2
    # without the cap at assignment (each utterance a new speaker), the re-check merges down to it
    loose = OnlineSpeakers(threshold=1.1, merge_threshold=0.99)
    for i in [0, 1, 2]:
        loose.assign(utterance(v[i], rng), 2.0)
    loose.num_speakers = 2
    merges = loose.recheck().merges
    assert len(merges) == 1 and len(loose.labels) == 2


def test_a_chain_of_merges_points_at_the_label_that_survives():
    e = voices(1)[0]
    speakers = OnlineSpeakers(threshold=1.1, merge_threshold=0.9, refine_rounds=0)  # S1, S2, S3
    for _ in range(3):
        speakers.assign(e, 2.0)
    result = speakers.recheck()
    assert {m.gone for m in result.merges} == {"S2", "S3"} and {m.kept for m in result.merges} == {"S1"}
    assert speakers.history == ["S1"] * 3 and result.relabelled == {1: "S1", 2: "S1"}


@pytest.mark.parametrize(
    "truth, found, expected",
    [
        (["a", "a", "b", "b"], ["S1", "S1", "S2", "S2"], 1.0),
        (["a", "a", "b", "b"], ["S2", "S2", "S1", "S1"], 1.0),
        (["a", "a", "b", "b"], ["S1", "S1", "S1", "S1"], 0.5),
        (["a", "b", "c", "a"], ["S1", "S2", "S2", "S3"], 0.5),
        ([], [], 1.0),
    ],
)
def test_best_mapping_accuracy(truth, found, expected):
    accuracy, mapping = best_mapping_accuracy(truth, found)
    assert accuracy == pytest.approx(expected)
    assert len(set(mapping.values())) == len(mapping)  # one-to-one


def test_best_mapping_is_optimal_not_greedy():
    # greedy gives S1 -> a (3 right), then S2 -> b (none): 3; the best is S1 -> b, S2 -> a: 5
    truth = ["a", "a", "a", "b", "b", "b", "a", "a"]
    found = ["S1", "S1", "S1", "S1", "S1", "S1", "S2", "S2"]
    accuracy, mapping = best_mapping_accuracy(truth, found)
    assert accuracy == pytest.approx(5 / 8) and mapping == {"S1": "b", "S2": "a"}


def test_eight_voices_get_eight_labels():
    rng = np.random.default_rng(11)
    v = voices(8, seed=11)
    order = [int(i) for i in rng.integers(0, 8, size=80)] + list(range(8))
    speakers = OnlineSpeakers()
    for i in order:
        speakers.assign(utterance(v[i], rng), 2.5)
        speakers.recheck()
    assert len(speakers.labels) == 8
    accuracy, _ = best_mapping_accuracy([str(i) for i in order], speakers.history)
    assert accuracy == 1.0


def test_one_voice_over_a_hundred_utterances_stays_one_label():
    rng = np.random.default_rng(12)
    v = voices(1, seed=12)[0]
    speakers = OnlineSpeakers()
    live = []
    for n in range(100):
        # a wide spread (cosine about 0.83 between utterances, mean; the GE2E monologues: 0.88), and now and then a short one
        live.append(speakers.assign(utterance(v, rng, spread=0.45), 0.5 if n % 7 == 3 else 3.0).label)
        speakers.recheck()
    assert speakers.labels == ["S1"] and set(speakers.history) == {"S1"}


def test_a_lone_outlier_is_folded_into_the_nearest_speaker_once_others_followed():
    rng = np.random.default_rng(13)
    v = voices(2, seed=13)
    odd = v[0] * 0.7 + v[1] * 0.7  # one utterance far from the voice's others (a cough, a laugh)
    speakers = OnlineSpeakers(threshold=0.8, merge_threshold=0.8, min_utterances=3, pending=2)
    for _ in range(4):
        speakers.assign(utterance(v[0], rng), 2.0)
    assert speakers.assign(odd / np.linalg.norm(odd), 2.0).new_speaker  # S2, live
    assert speakers.recheck().relabelled == {}  # still among the latest: a speaker may be starting
    speakers.assign(utterance(v[0], rng), 2.0)
    speakers.recheck()
    speakers.assign(utterance(v[0], rng), 2.0)
    result = speakers.recheck()  # no second utterance like it: not a speaker
    assert result.relabelled == {4: "S1"} and [(m.gone, m.kept) for m in result.merges] == [("S2", "S1")]
    assert speakers.labels == ["S1"]
    # a label is never reused
    assert speakers.assign(utterance(v[1], rng), 2.0).label == "S3"


def test_a_new_speaker_confirmed_by_enough_utterances_keeps_its_label():
    rng = np.random.default_rng(14)
    v = voices(2, seed=14)
    speakers = OnlineSpeakers(min_utterances=3, pending=2)
    for i in [0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0]:
        speakers.assign(utterance(v[i], rng), 2.0)
        speakers.recheck()
    assert speakers.labels == ["S1", "S2"]
    assert speakers.history == ["S2" if i else "S1" for i in [0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0]]


def test_a_speaker_with_enough_speech_is_confirmed_by_one_long_utterance():
    rng = np.random.default_rng(15)
    v = voices(2, seed=15)
    speakers = OnlineSpeakers(min_utterances=3, min_speaker_s=15.0, pending=1)
    speakers.assign(utterance(v[0], rng), 2.0)
    speakers.assign(utterance(v[1], rng), 20.0)  # a long statement: a speaker however few lines
    for _ in range(4):
        speakers.assign(utterance(v[0], rng), 2.0)
        speakers.recheck()
    assert speakers.labels == ["S1", "S2"] and speakers.history[1] == "S2"


def test_recheck_reclusters_what_the_live_threshold_split():
    rng = np.random.default_rng(16)
    v = voices(1, seed=16)[0]
    # live, each utterance is far enough from the running centroid to start a speaker
    speakers = OnlineSpeakers(threshold=0.99, merge_threshold=0.8)
    for _ in range(4):
        speakers.assign(utterance(v, rng), 2.0)
    assert speakers.history == ["S1", "S2", "S3", "S4"]
    result = speakers.recheck()
    assert speakers.history == ["S1"] * 4 and speakers.labels == ["S1"]
    assert {m.gone for m in result.merges} == {"S2", "S3", "S4"} and {m.kept for m in result.merges} == {"S1"}
    assert result.relabelled == {1: "S1", 2: "S1", 3: "S1"}


def test_a_recheck_that_changes_nothing_relabels_nothing():
    rng = np.random.default_rng(17)
    v = voices(3, seed=17)
    speakers = OnlineSpeakers()
    for i in [0, 1, 2] * 5:
        speakers.assign(utterance(v[i], rng), 2.0)
        speakers.recheck()
    assert speakers.recheck() == speakers.recheck() and speakers.recheck().relabelled == {}


def test_the_mapping_keeps_the_most_lines_labelled_as_they_were():
    rng = np.random.default_rng(18)
    v = voices(2, seed=18)
    # live, the second voice's first line went to S1 (a low threshold); then S2 began
    speakers = OnlineSpeakers(threshold=-1.0, refine_rounds=0)
    for i in [0, 0, 0, 1]:
        speakers.assign(utterance(v[i], rng), 2.0)
    speakers.threshold = 0.7
    for i in [1, 1, 0]:
        speakers.assign(utterance(v[i], rng), 2.0)
    assert speakers.history == ["S1", "S1", "S1", "S1", "S2", "S2", "S1"]
    result = speakers.recheck()
    assert result.relabelled == {3: "S2"} and result.merges == []


def test_longer_utterances_weigh_more_in_the_centroid():
    v = voices(2, seed=19)
    speakers = OnlineSpeakers(threshold=-1.0)
    speakers.assign(v[0], 4.0)
    speakers.assign(v[1], 1.0)
    centroid = speakers.speakers[0].centroid
    assert centroid @ v[0] - centroid @ v[1] > 0.6  # by count alone: equal


def test_a_short_utterance_never_starts_a_speaker_at_recheck_either():
    rng = np.random.default_rng(20)
    v = voices(3, seed=20)
    speakers = OnlineSpeakers()
    for i in [0, 0, 0, 1, 1, 1]:
        speakers.assign(utterance(v[i], rng), 2.0)
    speakers.assign(utterance(v[2], rng), 0.4)  # "Ja." from a voice never heard at length
    speakers.recheck()
    assert speakers.labels == ["S1", "S2"] and speakers.history[-1] in {"S1", "S2"}


def test_the_window_leaves_older_lines_alone():
    rng = np.random.default_rng(21)
    v = voices(2, seed=21)
    speakers = OnlineSpeakers(window=5)
    for i in [0, 1] * 6:
        speakers.assign(utterance(v[i], rng), 2.0)
    before = list(speakers.history)
    assert speakers.recheck().relabelled == {} and speakers.history == before
    assert speakers.labels == ["S1", "S2"]


def test_a_recheck_over_three_hundred_utterances_is_cheap():
    rng = np.random.default_rng(22)
    v = voices(6, seed=22)
    speakers = OnlineSpeakers()
    for i in rng.integers(0, 6, size=300):
        speakers.assign(utterance(v[int(i)], rng), float(rng.uniform(0.4, 6.0)))
    start = time.perf_counter()
    speakers.recheck()
    assert time.perf_counter() - start < 0.05
    assert len(speakers.labels) == 6
