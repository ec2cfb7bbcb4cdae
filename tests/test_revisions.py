"""What is added to a session afterwards, through the stage seam with scripted stages
(tests/scripted.py): an organiser's correction, a summary, a late viewer's earlier lines.
The scripted `translate` answers "FR Hallo." for French and records every call; the scripted
`summarize` lists each line it was given as an action item."""

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
from livetranslate.actions import MAX_EDIT_CHARS, SessionAction
from livetranslate.pipeline import Pipeline, PipelineOptions
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.present.export import export
from livetranslate.protocol import Event, EventKind, ProtocolError
from livetranslate.stages import summary
from livetranslate.store import Hub, SessionStore

DECODE = DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)


@pytest.fixture
def store(tmp_path):
    return SessionStore(tmp_path, hub=Hub(), fsync=False)


@pytest.fixture
def pipeline(stages, clock, store):
    before = {t for t in threading.enumerate() if t.name != "viewer-counts"}
    pipeline = Pipeline(stages, PipelineOptions(decode=DECODE), store=store, clock=clock)
    yield pipeline
    assert wait_for(lambda: not pipeline.open_streams()), pipeline.open_streams()
    left = lambda: {t for t in threading.enumerate() if t.name != "viewer-counts"} - before  # noqa: E731
    assert wait_for(lambda: not left()), left()  # the late-viewer worker ends when it has no work


ids = iter(range(5000, 10**6))


def act(pipeline, **fields) -> list[Event]:
    """One SESSION_ACTION request: its events, up to and with the final `end` (or `error`)."""
    events: list[Event] = []
    reply = Collect(events)
    data = fields.pop("raw", None) or SessionAction(**fields).to_json()
    pipeline.handle(next(ids), True, True, {P.SESSION_ACTION: np.array([data.encode()], dtype=np.object_)}.get, reply)
    assert reply.closed.wait(10)
    return events


def watch(pipeline, language=None, session="talk") -> tuple[list[Event], Collect]:
    events: list[Event] = []
    reply = Collect(events)
    request = {P.SUBSCRIBE: np.array([session.encode()], dtype=np.object_)}
    if language:
        request[P.TARGET_LANGUAGE] = np.array([language.encode()], dtype=np.object_)
    pipeline.handle(next(ids), True, True, request.get, reply)
    return events, reply


def spoken(pipeline, clock, *words) -> list[Event]:
    speaker = Speaker(pipeline, clock, 1)
    speaker.quiet(1)
    speaker.say(*words)
    return speaker.end()


def test_a_correction_is_kept_beside_the_original_translated_and_sent_to_the_readers(pipeline, stages, clock, store):
    speaker = Speaker(pipeline, clock, 1)
    speaker.quiet(1)
    speaker.say(1, 2)
    seen, reply = watch(pipeline)  # a reader still connected
    first = kinds(speaker.events, EventKind.TRANSCRIPT)[0]
    answer = act(pipeline, action="edit", session="talk", segment_id=first.segment_id, text="Hallo  Leute!")
    speaker.end()
    corrections = kinds(answer, EventKind.CORRECTION)
    assert [(c.language, c.text) for c in corrections] == [("de", "Hallo Leute!"), ("en", "EN Hallo Leute!")]
    assert answer[-1].kind == EventKind.END and not answer[-1].error
    assert {c.segment_id for c in corrections} == {first.segment_id}
    assert wait_for(lambda: len(kinds(seen, EventKind.CORRECTION)) == 2)  # the reader got both
    stored = store.events("talk")
    assert kinds(stored, EventKind.TRANSCRIPT)[0].text == first.text  # nothing overwritten
    assert len(kinds(stored, EventKind.CORRECTION)) == 2
    # exports: the corrected text first; `first` keeps what was said and shown first
    best = export(stored, "txt", "both", "en")
    assert "Hallo Leute! / EN Hallo Leute!" in best and first.text not in best
    assert first.text in export(stored, "txt", "both", "en", text="first")
    reply.cancelled = True
    assert reply.closed.wait(5)


def test_the_latest_correction_wins_and_outranks_the_in_context_translation(pipeline, clock, store):
    events = spoken(pipeline, clock, 1, 2, 3)
    line = kinds(events, EventKind.TRANSCRIPT)[1].segment_id
    act(pipeline, action="edit", session="talk", segment_id=line, text="Erste Fassung.")
    act(pipeline, action="edit", session="talk", segment_id=line, text="Zweite Fassung.")
    stored = store.events("talk")
    assert len(kinds(stored, EventKind.CORRECTION)) == 4
    rows = export(stored, "txt", "target", "en")
    assert "EN Zweite Fassung." in rows and "Erste" not in rows
    assert "EN Welt." not in rows  # the corrected sentence, not its window's older text


def test_a_correction_of_an_ended_session_is_stored_and_listed(pipeline, clock, store):
    events = spoken(pipeline, clock, 1)
    assert store.info("talk").state == "ended"
    line = kinds(events, EventKind.TRANSCRIPT)[0].segment_id
    answer = act(pipeline, action="edit", session="talk", segment_id=line, text="Servus.")
    assert not answer[-1].error
    assert store.info("talk").state == "ended"  # still ended: a correction starts nothing
    assert store.info("talk").counts.get("correction") == 2


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (dict(action="edit", session="nobody", segment_id=0, text="x"), "no session named 'nobody'"),
        (dict(action="edit", session="talk", segment_id=99, text="x"), "has no line #99 (its lines are #0 to #0)"),
        (dict(raw='{"action": "edit"'), "must be JSON"),
        (dict(raw='{"action": "drop", "session": "talk"}'), "unknown session action 'drop'"),
        (dict(raw='{"action": "edit", "session": "talk", "segment_id": 0, "text": "   "}'), "it is empty"),
        (dict(raw='{"action": "edit", "session": "talk", "segment_id": -1, "text": "x"}'), "segment id"),
        (dict(raw='{"action": "edit", "session": "talk", "segment_id": 0, "text": "x", "who": 1}'), "unknown field"),
        (dict(raw='{"action": "summary", "session": "ta\\u0007lk"}'), "printable"),
        (dict(raw='{"action": "summary", "session": "talk", "language": "klingon"}'), "unknown language"),
    ],
)
def test_a_bad_request_gets_a_plain_answer_and_changes_nothing(pipeline, clock, store, fields, says):
    spoken(pipeline, clock, 1)
    before = store.events("talk")
    answer = act(pipeline, **fields)
    told = " ".join(e.error or e.text for e in answer)
    assert says in told, told
    assert answer[-1].kind in (EventKind.END, EventKind.ERROR)
    assert store.events("talk") == before


def test_a_correction_of_ten_thousand_characters_is_refused():
    with pytest.raises(ProtocolError, match=f"at most {MAX_EDIT_CHARS} characters"):
        SessionAction("edit", "talk", 0, "a" * 10_000)
    # markup is text: kept as said, never interpreted (the views escape it)
    assert SessionAction("edit", "talk", 0, "<b>fett</b>\n<script>x</script>").text == "<b>fett</b> <script>x</script>"


def test_a_summary_covers_every_line_in_the_readers_language_and_is_kept(pipeline, stages, clock, store, monkeypatch):
    monkeypatch.setattr(summary, "PIECE_CHARS", 14)  # several pieces: each line its own
    events = spoken(pipeline, clock, 1, 2, 3)
    line = kinds(events, EventKind.TRANSCRIPT)[0].segment_id
    act(pipeline, action="edit", session="talk", segment_id=line, text="Korrigiert.")
    answer = act(pipeline, action="summary", session="talk", language="fr")
    made = kinds(answer, EventKind.SUMMARY)
    assert len(made) == 1 and made[0].language == "fr"
    # from the speaker's translations (a small LLM reads those best), the correction's included
    assert [text for text, _ in stages.summaries] == ["EN Korrigiert.", "EN Welt.", "EN Guten."]
    assert "Résumé: FR meeting of three" in made[0].text  # the pieces' one sentence, said once
    assert "- FR EN Korrigiert. (line)\n- FR EN Welt. (line)\n- FR EN Guten. (line)" in made[0].text
    stored = store.events("talk")
    assert kinds(stored, EventKind.SUMMARY) == made
    with pytest.raises(ValueError, match="no summary in en"):
        export(stored, "txt", "target", "en", with_summary=True)
    assert export(stored, "txt", "fr", "en", with_summary=True).startswith("Résumé: FR meeting")
    assert "\nNOTE\nRésumé" in export(stored, "vtt", "fr", "en", with_summary=True)
    with pytest.raises(ValueError, match="SRT file has no place"):
        export(stored, "srt", "fr", "en", with_summary=True)


def test_a_summary_of_a_session_without_lines_says_so(pipeline, clock, store):
    spoken(pipeline, clock)
    answer = act(pipeline, action="summary", session="talk")
    assert "no transcript to summarize" in answer[-1].error


def test_a_late_reader_gets_the_earlier_lines_in_its_language_newest_first(pipeline, stages, clock, store):
    speaker = Speaker(pipeline, clock, 1)
    speaker.quiet(1)
    speaker.say(1, 2, 3)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSLATION)) == 3)
    seen, reply = watch(pipeline, "fr")
    earlier = [e.segment_id for e in kinds(speaker.events, EventKind.TRANSCRIPT)]
    assert wait_for(lambda: len([e for e in kinds(seen, EventKind.TRANSLATION) if e.language == "fr"]) == 3)
    french = [text for text, target in stages.translations if target == "fr"]
    assert french == ["Guten.", "Welt.", "Hallo."]  # newest first
    assert sorted(e.segment_id for e in kinds(seen, EventKind.TRANSLATION)) == earlier
    speaker.say(1)  # a line after the join: the live stream's work, once
    assert wait_for(lambda: len(kinds(seen, EventKind.TRANSLATION)) == 4)
    speaker.end()
    assert [text for text, target in stages.translations if target == "fr"] == ["Guten.", "Welt.", "Hallo.", "Hallo."]
    assert wait_for(lambda: reply.closed.is_set())
    assert "fr" in store.info("talk").languages


def test_a_late_reader_who_leaves_stops_the_catching_up(pipeline, stages, clock, store):
    events = spoken(pipeline, clock, 1, 2, 3)
    assert len(kinds(events, EventKind.TRANSCRIPT)) == 3
    stages.llm_gate.clear()  # the LLM hangs on the first late line
    seen, reply = watch(pipeline, "fr")
    assert wait_for(lambda: any(t == "fr" for _, t in stages.translations))
    reply.cancelled = True
    assert reply.closed.wait(5)
    stages.llm_gate.set()
    assert wait_for(lambda: pipeline.revisions._late_worker is None)
    assert [text for text, target in stages.translations if target == "fr"] == ["Guten."]


def test_summary_pieces_parse_and_merge():
    lines = ["Eins zwei drei.", "Vier fünf.", "x" * 50]
    assert summary.pieces(lines, 20) == ["Eins zwei drei.", "Vier fünf.", "x" * 20]
    assert summary.pieces(["", "  "], 20) == []
    raw = (
        "Sure! Here are the minutes.\n**ABOUT:** The server budget.\nDECISION: We take a cheaper server.\n"
        "* none\nDECISION: Session ends\nTASKS:\n1. Maria checks providers by Friday.\n- None.\nTASK: Thomas wr"
    )
    parsed = summary.parse(raw)  # no filler, no line cut off by the token limit
    assert parsed.about == ["The server budget."] and parsed.decisions == ["We take a cheaper server."]
    assert parsed.actions == ["Maria checks providers by Friday."]
    again = summary.parse("ABOUT: More on costs.\nDECISIONS:\n- we take a cheaper server\nACTION ITEMS: - none")
    merged = summary.merge([parsed, again])
    assert merged.decisions == ["We take a cheaper server."]
    assert merged.about == ["The server budget.", "More on costs."]
    text = summary.render(merged, "de")
    assert text.splitlines()[0] == "Zusammenfassung: The server budget. More on costs."
    assert "Aufgaben:\n- Maria checks providers by Friday." in text
    assert "Entscheidungen:\n- —" in summary.render(summary.Sections(), "de")
    with pytest.raises(summary.SummaryError, match="cannot summarize"):
        summary.summary_prompt("fewshot", "x", "de", "en")
