"""Each viewer in its own language, checked through the stage seam with scripted stages on a
simulated clock (tests/scripted.py): the scripted `translate` answers "FR Hallo." for French
and records every call, so the tests count the LLM's work per language."""

import threading

import numpy as np
import pytest
from scripted import (  # noqa: F401 (pytest fixtures, taken by name)
    Clock,
    Collect,
    ScriptedStages,
    Speaker,
    clock,
    kinds,
    stages,
    wait_for,
)

from livetranslate import protocol as P
from livetranslate.pipeline import Limits, Pipeline, PipelineOptions, translator
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.present.export import export, languages
from livetranslate.protocol import EventKind
from livetranslate.store import Hub, SessionStore

DECODE = DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)
TRANSLATED = (EventKind.TRANSLATION, EventKind.ENHANCED)


@pytest.fixture
def store(tmp_path):
    return SessionStore(tmp_path, hub=Hub(), fsync=False)


@pytest.fixture
def pipeline(stages, clock, store):
    before = set(threading.enumerate())
    pipeline = Pipeline(stages, PipelineOptions(decode=DECODE), store=store, clock=clock)
    yield pipeline
    # everything freed: streams, sequences, threads, admission, the languages asked for
    assert wait_for(lambda: not pipeline.open_streams()), pipeline.open_streams()
    assert stages.unended() == set()
    assert wait_for(lambda: not set(threading.enumerate()) - before), set(threading.enumerate()) - before
    assert wait_for(lambda: pipeline.admission.counts() == (0, 0)), pipeline.admission.counts()
    assert pipeline.shared.languages.of("talk") == frozenset()


class Watcher:
    """A viewer of session `talk`, in `language` (None: the speaker's)."""

    ids = iter(range(1000, 10**6))

    def __init__(self, pipeline, language: str | None = None, session: str = "talk"):
        self.events: list = []
        self.reply = Collect(self.events)
        request = {P.SUBSCRIBE: np.array([session.encode()], dtype=np.object_)}
        if language is not None:
            request[P.TARGET_LANGUAGE] = np.array([language.encode()], dtype=np.object_)
        pipeline.handle(next(self.ids), True, True, request.get, self.reply)

    def translations(self, language: str | None = None) -> list:
        return [e for e in self.events if e.kind == EventKind.TRANSLATION and language in (None, e.language)]

    def leave(self) -> None:
        self.reply.cancelled = True
        assert self.reply.closed.wait(5)

    def finished(self) -> list:
        assert self.reply.closed.wait(5) and self.events[-1].kind == EventKind.END
        return self.events


def started(pipeline, clock, sequence_id: int) -> Speaker:
    """A speaker whose stream has begun (a second of silence): its session exists."""
    speaker = Speaker(pipeline, clock, sequence_id)
    speaker.quiet(1)
    return speaker


def calls(stages, language: str) -> list[str]:
    return [text for text, target in stages.translations if target == language]


def test_two_viewers_of_one_language_cost_one_translation_per_transcript(pipeline, stages, clock, store):
    speaker = started(pipeline, clock, 1)
    french = [Watcher(pipeline, "fr"), Watcher(pipeline, "FR ")]  # codes are normalised
    speaker.say(1, 2, 3)
    spoken = speaker.end()
    assert calls(stages, "fr") == ["Hallo.", "Welt.", "Guten."]  # once each, not once per viewer
    for viewer in french:
        seen = viewer.finished()
        assert [(e.segment_id, e.text, e.language) for e in viewer.translations()] == [
            (0, "FR Hallo.", "fr"),
            (1, "FR Welt.", "fr"),
            (2, "FR Guten.", "fr"),
        ]
        assert not kinds(seen, EventKind.ENHANCED)  # extra languages: sentence translations only
        assert [e.text for e in kinds(seen, EventKind.TRANSCRIPT)] == ["Hallo.", "Welt.", "Guten."]
    # the speaker gets its own language only; the session stores both
    assert {e.language for e in spoken if e.kind in TRANSLATED} == {"en"}
    stored = store.events("talk")
    assert [e.text for e in stored if e.kind == EventKind.TRANSLATION and e.language == "fr"] == [
        "FR Hallo.",
        "FR Welt.",
        "FR Guten.",
    ]
    assert store.info("talk").languages == ["en", "fr"]
    assert stored.index(kinds(stored, EventKind.END)[0]) == len(stored) - 1  # every translation before `end`


def test_each_viewer_gets_only_its_own_language(pipeline, stages, clock):
    speaker = started(pipeline, clock, 2)
    default, english, french = Watcher(pipeline), Watcher(pipeline, "en"), Watcher(pipeline, "fr")
    speaker.say(1, 2)
    speaker.end()
    assert calls(stages, "en").count("Hallo.") == 1  # viewers of the speaker's language cost nothing
    assert default.finished() == english.finished()
    assert {e.language for e in default.events if e.kind in TRANSLATED} == {"en"}
    assert kinds(default.events, EventKind.ENHANCED)
    french_events = french.finished()
    assert {e.language for e in french_events if e.kind in TRANSLATED} == {"fr"}
    # the same transcripts, in the same order, for everyone
    assert kinds(french_events, EventKind.TRANSCRIPT) == kinds(default.events, EventKind.TRANSCRIPT)


def test_the_speakers_language_goes_first(pipeline, stages, clock):
    speaker = started(pipeline, clock, 3)
    french = Watcher(pipeline, "fr")
    stages.llm_gate.clear()  # the LLM is busy: transcripts queue for translation
    speaker.say(1, 2, wait=False)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSCRIPT)) == 2)
    stages.llm_gate.set()
    assert wait_for(lambda: len(french.translations()) == 2)
    # the second transcript's English went before the first one's French
    assert stages.translations[:4] == [("Hallo.", "en"), ("Welt.", "en"), ("Hallo.", "fr"), ("Welt.", "fr")]
    speaker.end()
    french.finished()


def test_viewer_languages_wait_while_whisper_decodes_a_transcript(pipeline, stages, clock):
    speaker = started(pipeline, clock, 11)
    french = Watcher(pipeline, "fr")
    stages.llm_gate.clear()
    speaker.say(1, wait=False)
    assert wait_for(lambda: stages.translations == [("Hallo.", "en")])
    stages.whisper_gate.clear()  # the next utterance's final decode is under way
    speaker.say(2, wait=False)
    assert wait_for(lambda: pipeline.shared.load.final_under_way)
    stages.llm_gate.set()
    assert wait_for(lambda: kinds(speaker.events, EventKind.TRANSLATION))
    threading.Event().wait(0.3)
    assert calls(stages, "fr") == []  # the LLM is free, but Whisper has the CPU
    stages.whisper_gate.set()
    assert wait_for(lambda: len(french.translations()) == 2)
    assert stages.translations[:4] == [("Hallo.", "en"), ("Welt.", "en"), ("Hallo.", "fr"), ("Welt.", "fr")]
    speaker.end()
    french.finished()


def test_a_language_stops_when_its_last_viewer_leaves(pipeline, stages, clock):
    speaker = started(pipeline, clock, 4)
    first, second = Watcher(pipeline, "fr"), Watcher(pipeline, "fr")
    speaker.say(1)
    assert wait_for(lambda: len(first.translations("fr")) == 1)
    first.leave()
    speaker.say(2)  # one viewer of French is left
    assert wait_for(lambda: len(second.translations("fr")) == 2)
    second.leave()
    assert wait_for(lambda: pipeline.shared.languages.of("talk") == frozenset())
    speaker.say(3)
    speaker.end()
    assert calls(stages, "fr") == ["Hallo.", "Welt."]


def test_a_late_joiner_gets_the_history_in_its_language_and_the_rest_translated(pipeline, stages, clock):
    speaker = started(pipeline, clock, 5)
    early = Watcher(pipeline, "fr")
    speaker.say(1, 2)
    assert wait_for(lambda: len(early.translations()) == 2)
    early.leave()
    speaker.say(3)  # nobody reads French now: not translated into it live
    assert calls(stages, "fr") == ["Hallo.", "Welt."]
    late_french, late_default = Watcher(pipeline, "fr"), Watcher(pipeline)
    assert wait_for(lambda: len(kinds(late_french.events, EventKind.TRANSCRIPT)) == 3)
    # the stored French at once; the line nobody read in French is translated for the newcomer
    assert wait_for(lambda: len(late_french.translations()) == 3)
    assert [e.text for e in late_french.translations()] == ["FR Hallo.", "FR Welt.", "FR Guten."]
    speaker.say(4)  # a French viewer again: translated live
    speaker.end()
    assert [e.text for e in late_french.translations()] == ["FR Hallo.", "FR Welt.", "FR Guten.", "FR Morgen."]
    assert calls(stages, "fr") == ["Hallo.", "Welt.", "Guten.", "Morgen."]  # each line once
    assert {e.language for e in late_french.finished() if e.kind in TRANSLATED} == {"fr"}
    assert [e.text for e in late_default.translations()] == ["EN Hallo.", "EN Welt.", "EN Guten.", "EN Morgen."]
    late_default.finished()


def test_the_source_language_is_not_translated_into_itself(pipeline, stages, clock):
    speaker = started(pipeline, clock, 6)
    german = Watcher(pipeline, "de")
    speaker.say(1)
    speaker.end()
    assert calls(stages, "de") == []
    assert not german.translations() and kinds(german.finished(), EventKind.TRANSCRIPT)


def test_translations_far_behind_the_speaker_are_stored_as_failed(pipeline, stages, clock, store, monkeypatch):
    monkeypatch.setattr(translator, "VIEWER_LANGUAGE_MAX_WAIT_S", -1.0)
    speaker = started(pipeline, clock, 7)
    french = Watcher(pipeline, "fr")
    speaker.say(1)
    spoken = speaker.end()
    assert calls(stages, "fr") == []
    (failed,) = french.translations()
    assert failed.language == "fr" and not failed.text and "behind the speaker" in failed.error
    assert not [e for e in spoken if e.error]  # the speaker's own are untouched


def test_an_unknown_viewer_language_is_a_clear_error(pipeline):
    events = []
    request = {P.SUBSCRIBE: np.array([b"talk"], dtype=np.object_), P.TARGET_LANGUAGE: np.array([b"xx"], np.object_)}
    pipeline.handle(99, True, True, request.get, Collect(events))
    assert events[0].kind == EventKind.ERROR and "unknown TARGET_LANGUAGE 'xx'" in events[0].text
    with pytest.raises(P.ProtocolError, match="unknown TARGET_LANGUAGE 'klingon'"):
        P.check_language("klingon")
    assert P.check_language(" FR") == "fr"


def test_exports_offer_every_stored_language(pipeline, stages, clock, store, tmp_path):
    speaker = started(pipeline, clock, 8)
    french = Watcher(pipeline, "fr")
    speaker.say(1, 2)
    speaker.end()
    french.finished()
    events = store.events("talk")
    assert languages(events, "en") == ["en", "fr"]
    assert export(events, "txt", "fr", "en") == "[00:01.0] FR Hallo.\n[00:03.0] FR Welt.\n"
    # the speaker's language has its enhanced window too: the best text by default
    assert export(events, "txt", "target", "en") == "[00:01.0] EN Hallo. Welt.\n"
    assert export(events, "txt", "target", "en", text="first") == "[00:01.0] EN Hallo.\n[00:03.0] EN Welt.\n"
    assert export(events, "txt", "target") == export(events, "txt", "en")  # the speaker's target, found
    assert "Hallo. Welt. / EN Hallo. Welt." in export(events, "txt", "both", "en")
    jsonl = export(events, "jsonl", "fr", "en")
    assert '"FR Hallo."' in jsonl and '"EN Hallo."' not in jsonl and '"Hallo."' in jsonl
    with pytest.raises(ValueError, match=r"no translations into 'it' .*it has: en, fr"):
        export(events, "srt", "it", "en")
    # the languages survive in the metadata, and are rebuilt from the log without it
    assert SessionStore(store.data_dir).info("talk").languages == ["en", "fr"]
    for meta in store.data_dir.glob("*.meta.json"):
        meta.unlink()
    assert SessionStore(store.data_dir).info("talk").languages == ["en", "fr"]


def test_the_dashboard_shows_the_speakers_translations_beside_the_transcripts(pipeline, stages, clock, store):
    from livetranslate.dashboard import session_rows

    speaker = started(pipeline, clock, 9)
    french = Watcher(pipeline, "fr")
    speaker.say(1)
    speaker.end()
    french.finished()
    events = store.events("talk")
    assert [r["translation"] for r in session_rows(events)] == ["EN Hallo."]
    assert [r["translation"] for r in session_rows(events, "fr")] == ["FR Hallo."]


def test_a_session_is_read_in_a_bounded_number_of_languages(stages, clock, store):
    pipeline = Pipeline(
        stages, PipelineOptions(decode=DECODE, limits=Limits(max_viewer_languages=1)), store=store, clock=clock
    )
    speaker = started(pipeline, clock, 10)
    french, spanish = Watcher(pipeline, "fr"), Watcher(pipeline, "es")
    more_french, english = Watcher(pipeline, "fr"), Watcher(pipeline, "en")  # a language read already; the speaker's
    (refused,) = spanish.finished()
    assert refused.error == (
        "session 'talk' is already read in 1 language(s) besides the speaker's (fr), the most one "
        "session takes: read one of those"
    )
    speaker.say(1)
    speaker.end()
    assert calls(stages, "es") == [] and calls(stages, "fr") == ["Hallo."]
    for viewer in (french, more_french, english):
        assert viewer.finished() and viewer.translations()
    assert wait_for(lambda: pipeline.shared.languages.of("talk") == frozenset())


def test_watch_refuses_an_unknown_language_before_connecting():
    from click.testing import CliRunner

    from livetranslate.cli import main

    result = CliRunner().invoke(main, ["watch", "talk", "--lang", "klingon", "--url", "127.0.0.1:9"])
    assert result.exit_code == 2 and "unknown language 'klingon'" in result.output
    assert "livetranslate languages" in result.output
    french = CliRunner().invoke(main, ["watch", "talk", "--lang", "French", "--url", "127.0.0.1:9"])
    assert "unknown language" not in french.output  # a name works: it got as far as connecting


def test_a_small_base_model_sees_its_examples_in_the_viewers_language():
    from livetranslate.stages.llm.prompts import translation_prompt

    french = translation_prompt("fewshot", "Hallo  zusammen.", "de", "fr").text
    assert "French: Où est la gare la plus proche ?" in french and "English" not in french
    assert french.endswith("German: Hallo zusammen.\nFrench:")
    assert "English: Where is the nearest train station?" in translation_prompt("fewshot", "x", "de", "en").text
