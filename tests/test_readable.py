from livetranslate.present.readable import adds_something, normalized
from livetranslate.protocol import Event, EventKind


def enhanced(text, first, last):
    return Event(EventKind.ENHANCED, text, segment_id=last, first_segment_id=first, language="en")


def translation(text, segment_id):
    return Event(EventKind.TRANSLATION, text, segment_id=segment_id, language="en")


def test_a_one_sentence_window_that_repeats_the_sentence_translation_adds_nothing():
    sentences = {3: translation("Good morning, everyone.", 3)}
    assert not adds_something(enhanced("Good morning everyone", 3, 3), sentences)
    assert adds_something(enhanced("Good morning, all of you.", 3, 3), sentences)


def test_a_window_of_several_sentences_is_shown():
    sentences = {3: translation("We start.", 3), 4: translation("The project is late.", 4)}
    assert adds_something(enhanced("We start. The project is late.", 3, 4), sentences)


def test_with_no_sentence_translation_to_compare_it_is_shown_and_failures_never_are():
    assert adds_something(enhanced("Hello.", 7, 7), {})
    assert adds_something(enhanced("Hello.", 7, 7), {7: Event(EventKind.TRANSLATION, "", segment_id=7, error="x")})
    failed = Event(EventKind.ENHANCED, "", segment_id=7, first_segment_id=7, error="enhanced translation failed")
    assert not adds_something(failed, {})
    assert not adds_something(enhanced("   ", 7, 7), {})


def test_normalized_ignores_case_punctuation_and_spacing():
    assert normalized("  Guten  Morgen, Zürich!") == normalized("guten morgen zürich")
