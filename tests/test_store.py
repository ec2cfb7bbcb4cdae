import threading

import srt
import webvtt

from livetranslate.export import export
from livetranslate.pipeline import follow
from livetranslate.protocol import Event, EventKind
from livetranslate.store import Hub, SessionStore, safe_name, session_report


def ev(kind, text="", seg=0, start=0.0, end=1.0, **kw):
    return Event(kind, text, seg, start, end, **kw)


def test_events_survive_a_new_store_and_a_torn_last_line(tmp_path):
    store = SessionStore(tmp_path)
    store.open("Weekly / Team", "de", "en")
    events = [ev(EventKind.TRANSCRIPT, "Hallo.", 0), ev(EventKind.TRANSLATION, "Hello.", 0, language="en")]
    for e in events:
        store.append("Weekly / Team", e)
    # a crash mid-write: half a line at the end
    log = next(tmp_path.glob("*.jsonl"))
    with open(log, "a") as f:
        f.write('{"kind": "transcript", "text": "Abgeschn')
    again = SessionStore(tmp_path)  # a restarted server
    assert again.events("Weekly / Team") == events
    info = again.info("Weekly / Team")
    assert info.state == "live" and info.source_language == "de"
    again.open("Weekly / Team", "de", "en")  # the client reconnects to the restarted server
    again.append("Weekly / Team", ev(EventKind.END, end=5.0))
    again.close("Weekly / Team")
    assert SessionStore(tmp_path).info("Weekly / Team").state == "ended"
    assert SessionStore(tmp_path).events("Weekly / Team")[-1].kind == EventKind.END


def test_session_names_are_safe_file_names():
    assert safe_name("standup") == "standup"
    assert "/" not in safe_name("../../etc/passwd") and safe_name("a/b") != safe_name("a_b")


def test_list_is_newest_first_and_get_fails_clearly(tmp_path):
    store = SessionStore(tmp_path)
    store.open("old", "de", "en")
    store.open("new", "de", "en")
    import json

    assert [s["name"] for s in json.loads(session_report(store, "list"))][:2] == ["new", "old"]
    try:
        session_report(store, "get", "missing")
        raise AssertionError("expected an error")
    except ValueError as exc:
        assert "no session named 'missing'" in str(exc)


class Collect:
    def __init__(self):
        self.events, self.closed = [], threading.Event()

    def send(self, event):
        self.events.append(event)

    def close(self):
        self.closed.set()


def test_viewer_gets_history_then_live_then_end(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    first = ev(EventKind.TRANSCRIPT, "Eins.", 0)
    store.append("s", first)
    viewer = Collect()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"poll_s": 0.05})
    thread.start()
    live = [ev(EventKind.TRANSCRIPT, "Zwei.", 1), ev(EventKind.END)]
    for e in live:
        store.append("s", e)
    store.close("s")
    thread.join(5)
    assert viewer.closed.is_set() and viewer.events == [first] + live


def test_slow_viewer_is_dropped_not_the_speaker(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    gate = threading.Event()

    class Stuck(Collect):
        def send(self, event):
            gate.wait(5)  # a viewer that does not read
            super().send(event)

    viewer = Stuck()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"max_events": 5, "poll_s": 0.01})
    thread.start()
    store.append("s", ev(EventKind.TRANSCRIPT, "x", 0))  # blocks the viewer thread in send
    for i in range(1, 50):
        store.append("s", ev(EventKind.TRANSCRIPT, "x", i))  # the speaker never waits
    gate.set()
    thread.join(5)
    assert viewer.events[-1].kind == EventKind.END and "fell more than 5 events behind" in viewer.events[-1].error


def test_missing_session_is_an_error_event(tmp_path):
    viewer = Collect()
    follow(SessionStore(tmp_path, hub=Hub()), "nope", viewer)
    assert viewer.events == [Event(EventKind.END, error="no session named 'nope'")]


def test_exports_parse_and_match():
    events = [
        ev(EventKind.TRANSCRIPT, "Guten Morgen.", 0, 0.5, 2.0),
        ev(EventKind.TRANSLATION, "Good morning.", 0, 0.5, 2.0, language="en"),
        ev(EventKind.TRANSCRIPT, "Wie geht's?", 1, 2.5, 4.0),
        ev(EventKind.TRANSLATION, "", 1, 2.5, 4.0, error="translation failed"),
        ev(EventKind.END, end=4.5),
    ]
    subs = list(srt.parse(export(events, "srt", "both")))
    assert [s.content for s in subs] == ["Guten Morgen.\nGood morning.", "Wie geht's?"]
    assert subs[1].start.total_seconds() == 2.5
    assert [c.text for c in webvtt.from_string(export(events, "vtt", "target"))] == ["Good morning."]
    assert export(events, "txt", "source") == "[00:00.5] Guten Morgen.\n[00:02.5] Wie geht's?\n"
    assert len(export(events, "jsonl").splitlines()) == 5


def test_a_crashed_servers_live_sessions_are_ended_on_recovery(tmp_path):
    store = SessionStore(tmp_path)
    store.open("crashed", "de", "en")
    store.append("crashed", ev(EventKind.TRANSCRIPT, "Hallo.", 0))
    store.open("clean", "de", "en")
    store.close("clean")
    again = SessionStore(tmp_path)  # the server after a kill -9
    assert again.recover() == ["crashed"]
    assert again.info("crashed").state == "ended" and again.info("crashed").ended_at is not None
    assert again.events("crashed")[0].text == "Hallo."  # nothing lost
    again.open("crashed", "de", "en")  # a reconnecting client makes it live again
    assert again.info("crashed").state == "live"


def test_a_session_ends_with_its_last_stream(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")  # the stream of a client whose network dropped
    store.open("s", "de", "en")  # the same client, reconnected
    assert store.live_streams("s") == 2
    assert store.close("s") is False and store.info("s").state == "live"  # the old stream timing out
    assert store.close("s") is True and SessionStore(tmp_path).info("s").state == "ended"


def test_a_new_stream_under_an_old_name_goes_on_from_its_segments(tmp_path):
    store = SessionStore(tmp_path)
    assert store.resume_point("s") == (0, 0.0)
    store.open("s", "de", "en")
    store.append("s", ev(EventKind.TRANSCRIPT, "Eins.", 0, 0.5, 2.0))
    store.append("s", ev(EventKind.TRANSCRIPT, "Zwei.", 1, 2.5, 4.0))
    store.append("s", ev(EventKind.END, end=4.5))
    assert store.resume_point("s") == (2, 4.5)


def test_a_viewer_of_a_resumed_session_sees_one_end(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    history = [ev(EventKind.TRANSCRIPT, "Eins.", 0), ev(EventKind.END, end=1.0),  # the first run
               ev(EventKind.TRANSCRIPT, "Zwei.", 1)]  # the second run, still live
    for e in history:
        store.append("s", e)
    viewer = Collect()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"poll_s": 0.05})
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and [e.text for e in viewer.events] == ["Eins.", "Zwei."]
    last = ev(EventKind.END, end=2.0)
    store.append("s", last)
    store.close("s")
    thread.join(5)
    assert not thread.is_alive() and viewer.events[-1] == last


def test_a_viewer_whose_session_ended_between_history_and_live_still_ends(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    store.append("s", ev(EventKind.TRANSCRIPT, "Eins.", 0))
    store.append("s", ev(EventKind.END, end=1.0))  # appended, not yet closed
    viewer = Collect()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"poll_s": 0.05})
    thread.start()
    store.close("s")
    thread.join(5)
    assert not thread.is_alive() and [e.kind for e in viewer.events] == [EventKind.TRANSCRIPT, EventKind.END]
