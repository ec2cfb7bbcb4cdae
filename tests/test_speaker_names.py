"""Speakers' names and later relabels, without a server: the rename action's checks, the
`SpeakerBook` every surface reads (exports, subtitles, the terminal, piped text, the captions
page, the dashboard's table), the `speaker_update` a re-check sends (through the scripted
stage set), the rename request in the pipeline (a real file store) and the enhanced window
that never spans a change of speaker."""

from __future__ import annotations

import html
import io
import json
import time

import pytest
from scripted import (  # noqa: F401 (pytest fixtures, taken by name)
    Speaker,
    clock,
    kinds,
    silence,
    speech,
    stages,
)
from test_stream_spec import make_pipeline

from livetranslate.actions import MAX_NAME_CHARS, SessionAction
from livetranslate.present.speakers import SpeakerBook, speaker_times
from livetranslate.protocol import Event, EventKind, ProtocolError

T, TR, NAME, UPDATE = EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.SPEAKER_NAME, EventKind.SPEAKER_UPDATE


def meeting() -> list[Event]:
    said = [("Guten Morgen.", "Good morning.", "S1"), ("Hallo.", "Hello.", "S2"), ("Los.", "Go.", "S1")]
    events = []
    for i, (de, en, who) in enumerate(said):
        events.append(Event(T, de, i, 2.0 * i, 2.0 * i + 1.5, "de", speaker=who))
        events.append(Event(TR, en, i, 2.0 * i, 2.0 * i + 1.5, "en", speaker=who))
    return events


# --- the rename action -------------------------------------------------------------------
def test_a_rename_names_a_label_with_one_line_of_text():
    action = SessionAction("rename", "talk", text="  Anna \n <b>Lena</b>\x1b[31m ", speaker=" s2 ")
    assert (action.speaker, action.text) == ("S2", "Anna <b>Lena</b>[31m")  # markup is text; controls go
    assert SessionAction.from_json(action.to_json()) == action
    for label in ("", "Anna", "S0", "S", "S12345", "1"):
        with pytest.raises(ProtocolError, match=r"by its label \(S1, S2, ...\)"):
            SessionAction("rename", "talk", text="Anna", speaker=label)
    with pytest.raises(ProtocolError, match="needs at least one letter"):
        SessionAction("rename", "talk", text=" \n\t ", speaker="S1")
    with pytest.raises(ProtocolError, match=f"at most {MAX_NAME_CHARS} characters, got 10000"):
        SessionAction("rename", "talk", text="x" * 10_000, speaker="S1")
    with pytest.raises(ProtocolError, match="must be text"):
        SessionAction.from_json(json.dumps({"action": "rename", "session": "talk", "speaker": "S1", "text": 5}))


# --- who readers see -------------------------------------------------------------------------
def test_the_book_follows_names_and_moved_lines_and_hides_a_lone_speaker():
    book = SpeakerBook()
    assert not book.follow(Event(T, "a", 0, speaker="S1"))
    assert book.who(0) == ""  # one speaker so far: no label before every line
    assert book.follow(Event(T, "b", 1, speaker="S2"))  # a second one: the first one's lines say who now
    assert (book.who(0), book.who(1)) == ("S1", "S2")
    assert book.follow(Event(NAME, "Anna", 5, speaker="S1")) and book.who(0) == "Anna"
    assert not book.follow(Event(NAME, "Anna", 6, speaker="S1"))  # the same again: nothing changed
    assert book.follow(Event(UPDATE, segment_id=1, speaker="S1"))  # S2's line was S1's
    assert (book.who(1), book.label(1)) == ("Anna", "S1")
    assert book.who(7, "S3") == "S3"  # a line the book has not seen: its own label
    # an update stored before its transcript reached the book stands
    late = SpeakerBook.of([Event(UPDATE, segment_id=0, speaker="S2"), Event(T, "a", 0, speaker="S1")])
    assert late.label(0) == "S2"
    # a named lone speaker is shown by name
    assert SpeakerBook.of([Event(T, "a", 0, speaker="S1"), Event(NAME, "Anna", 0, speaker="S1")]).who(0) == "Anna"


def test_the_list_counts_moved_lines_where_they_are_now_and_says_the_names():
    events = meeting() + [Event(UPDATE, segment_id=1, speaker="S1"), Event(NAME, "Anna", 2, speaker="S1")]
    assert [(s.label, s.lines, s.name) for s in speaker_times(events)] == [("S1", 3, "Anna")]


def test_exports_say_the_names_in_every_format():
    from livetranslate.present.export import export

    events = meeting() + [Event(NAME, "Anna <b>L</b> & co", 3, speaker="S1")]
    txt = export(events, "txt", "source")
    assert txt.splitlines() == [
        "[00:00.0] Anna <b>L</b> & co: Guten Morgen.",
        "[00:02.0] S2: Hallo.",
        "[00:04.0] Anna <b>L</b> & co: Los.",
    ]
    assert "\nAnna <b>L</b> & co: Good morning.\n" in export(events, "srt", "target")
    vtt = export(events, "vtt", "both")
    assert "\n<v Anna &lt;b&gt;L&lt;/b&gt; &amp; co>Guten Morgen.\nGood morning.\n" in vtt
    assert "\n<v S2>Hallo.\nHello.\n" in vtt and "co:" not in vtt
    import webvtt

    parsed = webvtt.from_buffer(io.StringIO(vtt))
    # (webvtt-py leaves a voice's character references as they are written)
    assert [html.unescape(c.voice) for c in parsed] == ["Anna <b>L</b> & co", "S2", "Anna <b>L</b> & co"]
    jsonl = [json.loads(line) for line in export(events, "jsonl", "both").splitlines()]
    assert jsonl[-1] == {**jsonl[-1], "kind": "speaker_name", "speaker": "S1", "text": "Anna <b>L</b> & co"}
    # a line moved to another speaker is exported under it; one speaker alone: no labels
    moved = export(meeting() + [Event(UPDATE, segment_id=1, speaker="S1")], "txt", "source")
    assert "S1" not in moved and "S2" not in moved and "] Hallo." in moved


def test_live_subtitles_use_the_name_from_when_it_is_given(tmp_path):
    from livetranslate.present.subtitles import BestSubtitleWriter, SubtitleWriter

    path = tmp_path / "live.srt"
    writer = SubtitleWriter(path, "srt", (T,))
    for event in meeting()[:4] + [
        Event(NAME, "Bob", 2, speaker="S2"),
        Event(T, "Ja.", 2, 5.0, 6.0, "de", speaker="S2"),
    ]:
        writer.add(event)
    writer.close()
    cues = path.read_text().split("\n\n")
    assert "\nGuten Morgen." in cues[0] and "\nS2: Hallo." in cues[1] and "\nBob: Ja." in cues[2]
    best = BestSubtitleWriter(tmp_path / "best.vtt", "vtt", "en")
    for event in meeting() + [Event(NAME, "Bob", 3, speaker="S2")]:
        best.add(event)
    assert "<v Bob>Hello." in (tmp_path / "best.vtt").read_text()


def test_the_terminal_and_piped_text_follow_names_and_moved_lines():
    from livetranslate.cli.outputs import format_event
    from livetranslate.present.textview import SideBySideView

    out = io.StringIO()
    view = SideBySideView(out, live=False, size=lambda: (100, 40))
    for event in meeting()[:4]:
        view.event(event)
    view.event(Event(NAME, "Anna", 2, speaker="S1"))
    view.event(Event(UPDATE, segment_id=1, speaker="S1"))
    view.event(Event(T, "Ja.", 2, 4.0, 5.0, "de", speaker="S2"))
    view.event(Event(TR, "Yes.", 2, 4.0, 5.0, "en", speaker="S2"))
    view.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("#0 Guten Morgen.")  # one speaker so far: no label
    assert lines[1].startswith("#1 S2: Hallo.")
    assert "-- S1 is Anna from now on" in lines and "-- #1 was said by Anna:" in lines
    assert lines[-1].startswith("#2 S2: Ja.")
    assert format_event(meeting()[3], "text", "Bob").endswith("| Bob: Hello.")
    assert format_event(Event(NAME, "Anna\x1b[2J", 3, speaker="S1"), "text") == "-- S1 is Anna␛[2J from now on"
    assert json.loads(format_event(Event(UPDATE, segment_id=1, speaker="S1"), "jsonl"))["kind"] == "speaker_update"


def test_the_captions_page_and_the_dashboard_table_say_who_speaks():
    from livetranslate.dashboard.status import session_rows
    from livetranslate.present.captions import CaptionLines, Snapshot
    from livetranslate.present.captions_feed import PageFeed

    lines = CaptionLines("en")
    for event in meeting():
        lines.add(event)
    assert [ln.who for ln in lines.lines] == ["S1", "S2", "S1"]
    assert lines.add(Event(NAME, "Anna", 3, speaker="S1"))
    assert [ln.who for ln in lines.lines] == ["Anna", "S2", "Anna"]
    assert lines.add(Event(UPDATE, segment_id=1, speaker="S1")) and lines.lines[1].who == "Anna"
    assert not lines.add(Event(UPDATE, segment_id=1, speaker="S1"))  # nothing new
    rows = PageFeed().payload(Snapshot(lines=tuple(lines.lines)))["upsert"]
    assert [row[6] for row in rows] == ["Anna"] * 3
    alone = CaptionLines("en")
    alone.add(meeting()[0])
    alone.add(meeting()[1])
    assert alone.lines[0].who == ""
    assert alone.add(meeting()[2]) and alone.lines[0].who == "S1"  # a second speaker: the first line says who
    table = session_rows(meeting() + [Event(NAME, "Bob", 3, speaker="S2")])
    assert [row["speaker"] for row in table] == ["S1", "Bob", "S1"]


# --- in the pipeline -----------------------------------------------------------------------
def test_a_recheck_that_moves_a_line_sends_a_speaker_update_that_is_stored(stages, clock, tmp_path, monkeypatch):
    from livetranslate.stages.speakers import clustering
    from livetranslate.store import SessionStore

    real = clustering.OnlineSpeakers.recheck

    def recheck(self):  # the first line turns out to be the second speaker's
        found = real(self)
        return clustering.Recheck(found.merges, {0: "S2"} if len(self.history) == 2 else {})

    monkeypatch.setattr(clustering.OnlineSpeakers, "recheck", recheck)
    store = SessionStore(tmp_path)
    speaker = Speaker(make_pipeline(stages, clock, store=store), clock, 1, "moved", speakers=True)
    for word in (1, 9):
        speaker.send(speech(word, 2.0))
        speaker.send(silence())
    events = speaker.end()
    transcripts = kinds(events, EventKind.TRANSCRIPT)
    [update] = kinds(events, EventKind.SPEAKER_UPDATE)
    assert (update.segment_id, update.speaker) == (transcripts[0].segment_id, "S2")
    stored = store.events("moved")
    assert [e for e in stored if e.kind == EventKind.SPEAKER_UPDATE] == [update]
    assert SpeakerBook.of(stored).label(transcripts[0].segment_id) == "S2"


def test_a_rename_is_stored_and_an_unknown_label_gets_a_plain_answer(stages, clock, tmp_path):
    from livetranslate.pipeline.replies import Reply
    from livetranslate.store import SessionStore

    store = SessionStore(tmp_path)
    pipeline = make_pipeline(stages, clock, store=store)
    speaker = Speaker(pipeline, clock, 1, "named", speakers=True)
    for word in (1, 9):
        speaker.send(speech(word, 2.0))
        speaker.send(silence())
    speaker.end()

    class Collect(Reply):
        def __init__(self):
            self.events, self.closed = [], False

        def send(self, event):
            self.events.append(event)

        def close(self):
            self.closed = True

    def ask(label: str, name: str) -> list[Event]:
        reply = Collect()
        action = SessionAction("rename", "named", text=name, speaker=label)
        pipeline.revisions.request(1, action.to_json(), reply)
        for _ in range(200):
            if reply.closed:
                return reply.events
            time.sleep(0.01)
        raise AssertionError("no answer")

    named, end = ask("S2", "Bob")
    assert (named.kind, named.speaker, named.text) == (NAME, "S2", "Bob") and not end.error
    assert [(e.speaker, e.text) for e in store.events("named") if e.kind == NAME] == [("S2", "Bob")]
    [refused] = ask("S7", "Eve")
    assert (
        refused.kind == EventKind.END and refused.error == "session 'named' has no speaker S7 (its speakers are S1, S2)"
    )
    assert len([e for e in store.events("named") if e.kind == NAME]) == 1


def test_an_enhanced_window_never_spans_a_change_of_speaker():
    from livetranslate.stages.enhance import Enhancer, Piece, WindowOptions

    made = []
    enhancer = Enhancer(WindowOptions(), lambda text, context: made.append(text) or text.upper(), lambda text: False)
    enhancer.add(Piece(0, "Wir haben", 0.0, 1.0, "S1"))
    out = enhancer.add(Piece(1, "Ja genau", 1.2, 2.0, "S2"))
    assert [(e.reason, e.first_segment_id, e.last_segment_id) for e in out] == [("speaker", 0, 0)]
    assert made == ["Wir haben"]
    assert enhancer.add(Piece(2, "und dann", 2.2, 3.0, "S2")) == []  # the same speaker: the window goes on


def test_a_stream_that_goes_on_after_a_reconnect_keeps_the_session_s_labels(stages, clock):
    from livetranslate.pipeline.voices import Voices

    pipeline = make_pipeline(stages, clock)
    labels = []
    for words in ((9,), (1, 9)):  # the second voice first; after a reconnect, the first voice, then the second
        speaker = Speaker(pipeline, clock, len(labels) + 1, "again", speakers=True)
        for word in words:
            speaker.send(speech(word, 2.0))
            speaker.send(silence())
        labels += [e.speaker for e in kinds(speaker.end(), EventKind.TRANSCRIPT)]
    assert labels == ["S1", "S2", "S1"]  # not S1 again for another voice
    voices = Voices(most=2)
    first = voices.of("a")
    voices.of("b"), voices.of("c")
    assert voices.of("a") is not first  # the least recently heard session's voices go first
