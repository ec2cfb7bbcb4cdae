"""Speaker labels in the stream, through the scripted stage set: each transcript's label comes
from the speakers model's embedding of its utterance and the stream's online clustering; its
translations carry it; without labels asked for, the speakers model is never called; a
failing speakers model costs the label, never the transcript."""

from __future__ import annotations

from scripted import (  # noqa: F401 (pytest fixtures, taken by name)
    Speaker,
    clock,
    kinds,
    silence,
    speech,
    stages,
)
from test_stream_spec import make_pipeline

from livetranslate.protocol import EventKind
from livetranslate.store import SessionStore

# words 1..8 are said in one voice, 9.. in the other (tests/scripted.py: embed_speaker)
FIRST, SECOND = (1, 2, 3), (9, 10)


def talk(speaker: Speaker, words) -> None:
    for word in words:
        speaker.send(speech(word, 2.0))  # long enough for a reliable embedding (not a short one)
        speaker.send(silence())


def test_each_transcript_and_its_translations_carry_their_speaker(stages, clock, tmp_path):
    store = SessionStore(tmp_path)
    pipeline = make_pipeline(stages, clock, store=store)
    speaker = Speaker(pipeline, clock, 1, "meeting", speakers=True)
    talk(speaker, [FIRST[0], SECOND[0], SECOND[1], FIRST[1]])
    events = speaker.end()
    transcripts = kinds(events, EventKind.TRANSCRIPT)
    assert [e.speaker for e in transcripts] == ["S1", "S2", "S2", "S1"]
    by_segment = {e.segment_id: e.speaker for e in transcripts}
    translations = kinds(events, EventKind.TRANSLATION)
    assert translations and all(t.speaker == by_segment[t.segment_id] for t in translations)
    assert len(stages.embedded) == 4 and min(stages.embedded) >= 1.9 * 16_000  # each utterance's own audio
    stored = [e for e in store.events("meeting") if e.kind == EventKind.TRANSCRIPT]
    assert [e.speaker for e in stored] == ["S1", "S2", "S2", "S1"]
    assert stored[0].to_dict()["speaker"] == "S1"


def test_without_labels_the_speakers_model_is_never_asked(stages, clock):
    speaker = Speaker(make_pipeline(stages, clock), clock, 1)
    talk(speaker, [FIRST[0], SECOND[0]])
    events = speaker.end()
    assert [e.speaker for e in kinds(events, EventKind.TRANSCRIPT)] == ["", ""]
    assert stages.embedded == [] and "speaker" not in kinds(events, EventKind.TRANSCRIPT)[0].to_dict()


def test_a_failing_speakers_model_costs_the_label_not_the_transcript(stages, clock):
    stages.speakers_fail = True
    speaker = Speaker(make_pipeline(stages, clock), clock, 1, speakers=True)
    talk(speaker, [FIRST[0], SECOND[0]])
    events = speaker.end()
    transcripts = kinds(events, EventKind.TRANSCRIPT)
    assert [e.text for e in transcripts] == ["Hallo.", "Wir."] and all(e.speaker == "" for e in transcripts)
    assert not kinds(events, EventKind.ERROR)


def test_readers_see_the_label_before_the_line():
    from livetranslate.present.export import lines
    from livetranslate.present.terminal import render
    from livetranslate.present.textview import text_spans
    from livetranslate.protocol import Event

    events = [
        Event(EventKind.TRANSCRIPT, "Guten Morgen.", 0, 0.0, 1.0, "de", speaker="S1"),
        Event(EventKind.TRANSLATION, "Good morning.", 0, 0.0, 1.0, "en", speaker="S1"),
        Event(EventKind.TRANSCRIPT, "Danke.", 1, 1.5, 2.0, "de", speaker="S2"),
        Event(EventKind.TRANSCRIPT, "Bitte.", 2, 2.5, 3.0, "de"),
    ]
    assert [row[2] for row in lines(events, "source", "")] == ["S1: Guten Morgen.", "S2: Danke.", "Bitte."]
    assert lines(events, "target", "en")[0][2] == "S1: Good morning."
    from livetranslate.present.terminal import SPEAKER_COLOURS

    first, second = text_spans(events[0]), text_spans(events[2])
    assert first[0][0] == "S1:" and first[0][1] in SPEAKER_COLOURS and second[0][0] == "S2:"
    assert first[0][1] != second[0][1]  # a colour per speaker
    assert [t for t, _ in text_spans(events[1])] == [
        t for t, _ in text_spans(Event(EventKind.TRANSLATION, "Good morning."))
    ]
    markup = Event(EventKind.TRANSCRIPT, "x", 3, speaker="\x1b[31mS9")
    assert "\x1b[31m" not in render(text_spans(markup), color=False)  # a label is text, never an escape


def test_a_hint_caps_the_speakers_and_a_bad_one_is_refused(stages, clock):
    import pytest

    from livetranslate.protocol import ProtocolError, SessionOptions

    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 1, speakers=True)
    speaker.options = SessionOptions("talk", speakers=True, num_speakers=1).to_tensors()
    talk(speaker, [FIRST[0], SECOND[0], FIRST[1]])
    assert [e.speaker for e in kinds(speaker.end(), EventKind.TRANSCRIPT)] == ["S1", "S1", "S1"]
    for wrong in (-1, 33):
        with pytest.raises(ProtocolError, match="NUM_SPEAKERS"):
            SessionOptions("talk", speakers=True, num_speakers=wrong)


def test_who_spoke_and_for_how_long():
    from livetranslate.present.speakers import speaker_times
    from livetranslate.protocol import Event
    from livetranslate.words import Word

    t = EventKind.TRANSCRIPT
    events = [
        Event(
            t,
            "Hallo zusammen.",
            0,
            1.0,
            3.0,
            "de",
            speaker="S2",
            words=(Word("Hallo", 1.2, 1.6), Word("zusammen.", 1.6, 2.4)),
        ),
        Event(t, "Guten Morgen.", 1, 3.5, 5.0, "de", speaker="S1"),  # no words: its utterance's time
        Event(EventKind.TRANSLATION, "Good morning.", 1, 3.5, 5.0, "en", speaker="S1"),
        Event(t, "Ja.", 2, 5.5, 6.0, "de", speaker="S2"),
        Event(t, "Ohne Label.", 3, 6.5, 7.0, "de"),
    ]
    found = speaker_times(events)
    assert [(s.label, s.lines, s.seconds, s.first_s) for s in found] == [("S2", 2, 1.7, 1.0), ("S1", 1, 1.5, 3.5)]
    assert speaker_times(events[4:]) == []
