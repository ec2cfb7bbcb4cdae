"""An organiser's corrections and summaries in the dashboard, without a server: which text a
line shows and its mark, who may correct, what a save or a summary says back (the logic), and
the page that does it (AppTest, in front of a stand-in server)."""

import time
from pathlib import Path

import pytest

from livetranslate import dashboard as D
from livetranslate.client import ClientError
from livetranslate.dashboard import revisions as R
from livetranslate.dashboard.status import session_rows
from livetranslate.present import readable
from livetranslate.protocol import Event, EventKind

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
HOSTILE = "![x](http://evil/x.png) <img src=x onerror=alert(1)> **fett**"


def said(seg: int, text: str, kind=EventKind.TRANSCRIPT, language="de", **more) -> Event:
    return Event(kind, text, seg, seg * 2.0, seg * 2.0 + 1.5, language, **more)


def meeting() -> list[Event]:
    return [
        said(0, "Guten Morgen."),
        said(0, "Good morning.", EventKind.TRANSLATION, "en"),
        said(1, "Wir verschieben das Treffen auf Dienstag."),
        said(1, "We move the meeting to Tuesday.", EventKind.TRANSLATION, "en"),
        said(2, "Danke."),
        said(2, "Thanks.", EventKind.TRANSLATION, "en"),
        # in context: #1-2 together, which reads differently
        said(2, "We are moving the meeting to Tuesday. Thank you.", EventKind.ENHANCED, "en", first_segment_id=1),
    ]


# --- which text a line shows -------------------------------------------------------------------
def test_a_corrected_line_shows_the_correction_and_its_translation_with_a_quiet_mark():
    events = meeting() + [
        said(1, "Wir verschieben das Treffen auf Montag.", EventKind.CORRECTION, "de"),
        said(1, "We are moving the meeting to Monday.", EventKind.CORRECTION, "en"),
        said(1, "Wir verschieben das Treffen auf Mittwoch.", EventKind.CORRECTION, "de"),  # the latest wins
        said(1, "Nous déplaçons la réunion à mercredi.", EventKind.CORRECTION, "fr"),  # another language
    ]
    rows, marked = R.corrected_rows(session_rows(events), events)
    assert marked and [row["segment"] for row in rows] == [0, 1, 2]
    assert list(rows[1]) == ["segment", "time", R.MARK_COLUMN, "transcript", "translation", readable.COMBINED_NAME]
    assert rows[1]["transcript"] == "Wir verschieben das Treffen auf Mittwoch."
    assert rows[1]["translation"] == "We are moving the meeting to Monday."  # the table's language: en
    assert [row[R.MARK_COLUMN] for row in rows] == ["", R.CORRECTED_MARK, ""]
    assert R.CORRECTED_MARK == "✎ corrected" and readable.CORRECTED_EXPLAINED in R.CORRECTED_HELP
    # the translation in context covered #1: it follows what was said before, so it goes
    assert rows[2][readable.COMBINED_NAME] == "" and rows[0]["transcript"] == "Guten Morgen."
    # the uncorrected table stays as it was: no mark column, the translation in context kept
    plain, marked = R.corrected_rows(session_rows(meeting()), meeting())
    assert not marked and plain == session_rows(meeting()) and R.MARK_COLUMN not in plain[0]
    assert "(#1–2)" in plain[2][readable.COMBINED_NAME]


def test_a_correction_whose_translation_failed_still_marks_and_corrects_the_transcript():
    events = meeting() + [said(0, HOSTILE, EventKind.CORRECTION, "de")]
    rows, marked = R.corrected_rows(session_rows(events), events)
    assert marked and rows[0]["transcript"] == HOSTILE and rows[0]["translation"] == "Good morning."
    assert rows[0][R.MARK_COLUMN] == R.CORRECTED_MARK and rows[2][readable.COMBINED_NAME]  # #1-2 not corrected
    assert R.line_label(rows[0]).startswith("#0 · 00:00.0 · ![x]")  # text, shown as typed
    assert R.line_label({"segment": 7, "time": "01:02.0", "transcript": "a  b\nc " * 40}, width=20) == (
        "#7 · 01:02.0 · a b c a b c a b c a…"
    )


# --- who may correct ---------------------------------------------------------------------------
def test_only_the_dashboards_own_users_may_correct_never_a_visitor_without_a_login():
    with_login = {D.CREDENTIALS_ENV: "/etc/users.yaml"}
    assert R.may_edit("0.0.0.0", True, with_login)
    for status in (None, False, "True", 1):  # not logged in, a wrong password, anything but True
        assert not R.may_edit("0.0.0.0", status, with_login)
    assert R.may_edit("127.0.0.1", None, {D.NO_LOGIN_ENV: "1"})  # --no-login: loopback only
    assert not R.may_edit("0.0.0.0", True, {D.NO_LOGIN_ENV: "1"})  # a dashboard open to the network
    assert not R.may_edit("127.0.0.1", True, {})  # not configured to let anyone in


# --- a correction --------------------------------------------------------------------------------
def test_a_bad_correction_gets_a_clear_answer_before_the_server_is_asked(monkeypatch):
    asked = []
    monkeypatch.setattr("livetranslate.client.edit", lambda *args: asked.append(args) or [])
    too_long = R.correct(object(), "standup", 1, "a" * 10_000)
    assert not too_long.ok and too_long.headline == "Not saved: A correction is at most 2000 characters, got 10000."
    assert "empty" in R.correct(object(), "standup", 1, "  \n ").headline
    same = R.correct(object(), "standup", 1, "Danke. ", current="Danke.")
    assert not same.ok and "nothing to save" in same.headline
    assert "segment id" in R.correct(object(), "standup", None, "Danke").headline  # no line picked
    assert not asked
    assert R.correction_problem("standup", 1, HOSTILE) == ""  # markup is text like any other


def test_a_correction_says_what_the_server_stored_and_what_failed(monkeypatch):
    asked = []

    def edit(client, session, segment_id, text):
        asked.append((session, segment_id, text))
        return [
            said(segment_id, text, EventKind.CORRECTION, "de"),
            said(segment_id, "We are moving it to Wednesday.", EventKind.CORRECTION, "en"),
            Event(EventKind.ERROR, "the correction is stored; translating it into fr failed: timeout"),
        ]

    monkeypatch.setattr("livetranslate.client.edit", edit)
    done = R.correct(object(), "standup", 1, "Auf Mittwoch.", current="Auf Dienstag.")
    assert asked == [("standup", 1, "Auf Mittwoch.")]
    assert done.ok and done.headline == "Line #1 is corrected; its translation into en follows."
    assert done.stored == ["[de] Auf Mittwoch.", "[en] We are moving it to Wednesday."]
    assert done.warnings == ["The correction is stored; translating it into fr failed: timeout"]

    def refused(client, session, segment_id, text):
        raise ClientError("session 'standup' has no line #9 (its lines are #0 to #2)")

    monkeypatch.setattr("livetranslate.client.edit", refused)
    done = R.correct(object(), "standup", 9, "x")
    assert not done.ok and done.headline == "Not saved: Session 'standup' has no line #9 (its lines are #0 to #2)"


# --- a summary ---------------------------------------------------------------------------------
def test_a_summary_is_asked_in_the_sessions_target_first_and_a_stored_one_is_shown():
    info = {"source_language": "de", "target_language": "en"}
    events = meeting() + [
        Event(EventKind.SUMMARY, "Summary: old", 2, language="en"),
        Event(EventKind.SUMMARY, "Summary: newest\n\nDecisions:\n- Tuesday", 2, language="en"),
        Event(EventKind.SUMMARY, "Résumé", 2, language="fr"),
    ]
    assert R.summary_languages(info, events, ("ja", "en", "de")) == ["en", "de", "fr", "ja"]
    assert R.summary_languages({"source_language": "auto", "target_language": ""}, [], ("ja",)) == ["ja"]
    assert R.summary_view(events, "en", None) == R.SummaryView("Summary: newest\n\nDecisions:\n- Tuesday")
    assert R.summary_view(events, "de", None) == R.SummaryView()  # none in German yet


def wait(job: R.SummaryJob) -> R.SummaryJob:
    assert job.done.wait(10)
    return job


def test_a_summary_is_made_on_a_thread_and_a_refusal_is_said_plainly(monkeypatch):
    closed = []

    class Client:
        def close(self):
            closed.append(True)

    monkeypatch.setattr(
        "livetranslate.client.summarize", lambda client, session, language: Event(EventKind.SUMMARY, f" S {language} ")
    )
    job = wait(R.SummaryJob(Client, "standup", "fr").start())
    assert job.text == "S fr" and not job.error and closed == [True]
    assert R.summary_view([], "fr", job) == R.SummaryView("S fr")

    def refused(client, session, language):
        raise ClientError("the configured LLM is a completion model without instructions: it cannot summarize")

    monkeypatch.setattr("livetranslate.client.summarize", refused)
    job = wait(R.SummaryJob(Client, "standup", "en").start())
    assert job.error == "No summary: The configured LLM is a completion model without instructions: it cannot summarize"
    assert R.summary_view([], "en", job).error == job.error and len(closed) == 2

    def unreachable():
        raise ClientError("the server at localhost:8001 is not reachable")

    assert "not reachable" in wait(R.SummaryJob(unreachable, "standup", "en").start()).error
    running = R.SummaryJob(Client, "standup", "en")  # not started: still running
    view = R.summary_view([], "en", running, now=running.started + 12.4)
    assert view.running.startswith("Summarizing in en… 12 s (") and not view.text


# --- the page (AppTest, in front of a stand-in server) --------------------------------------------
class FakeServer:
    """One stored session, and what an organiser's corrections add to it."""

    info = {
        "name": "standup",
        "state": "ended",
        "source_language": "de",
        "target_language": "en",
        "counts": {"transcript": 3},
        "started_at": 0.0,
        "ended_at": 1.0,
    }
    events: list[Event] = []
    edits: list[tuple] = []

    def __init__(self, *args, **kwargs):
        pass

    def sessions(self, action, session=""):
        if action == "list":
            return [self.info]
        return {"info": self.info, "events": list(FakeServer.events)}

    def close(self):
        pass


def fake_edit(client, session, segment_id, text):
    FakeServer.edits.append((session, segment_id, text))
    made = [
        said(segment_id, text, EventKind.CORRECTION, "de"),
        said(segment_id, f"EN {text}", EventKind.CORRECTION, "en"),
    ]
    FakeServer.events.extend(made)
    return made


@pytest.fixture
def page(monkeypatch):
    """The dashboard without a login (loopback), in front of FakeServer."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    import livetranslate.client

    FakeServer.events, FakeServer.edits = meeting(), []
    monkeypatch.setattr(livetranslate.client, "PipelineClient", FakeServer)
    monkeypatch.setattr(livetranslate.client, "edit", fake_edit)
    for name in (D.CREDENTIALS_ENV, "LIVETRANSLATE_SETTINGS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(D.NO_LOGIN_ENV, "1")
    monkeypatch.setenv("LIVETRANSLATE_URL", "127.0.0.1:1")
    monkeypatch.setenv("LIVETRANSLATE_HTTP_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("LIVETRANSLATE_METRICS_URL", "http://127.0.0.1:1/metrics")
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield AppTest.from_file(str(APP), default_timeout=30)
    config.set_option("server.address", before)


def session_table(at):
    [table] = [t.value for t in at.table if "transcript" in t.value.columns]
    return table


def by_label(widgets, label):
    [widget] = [w for w in widgets if w.label == label]
    return widget


def test_an_organiser_corrects_a_line_and_the_view_shows_it_marked(page):
    at = page.run()
    assert not at.exception
    assert R.MARK_COLUMN not in session_table(at).columns and not [c for c in at.caption if c.value == R.CORRECTED_MARK]
    assert not [s for s in at.selectbox if s.label == "Line"]  # a reader's view until asked
    by_label(at.toggle, "Correct a line").set_value(True).run()
    line = by_label(at.selectbox, "Line")
    assert line.options == [R.line_label(row) for row in session_rows(meeting())]
    line.select(1).run()
    box = by_label(at.text_area, "Corrected text")
    assert box.value == "Wir verschieben das Treffen auf Dienstag." and "2000 characters" in box.help
    box.input("Wir verschieben das Treffen auf <b>Mittwoch</b>.")
    by_label(at.button, "Save correction").click().run()
    assert not at.exception
    assert FakeServer.edits == [("standup", 1, "Wir verschieben das Treffen auf <b>Mittwoch</b>.")]
    assert [s.value for s in at.success] == ["Line \\#1 is corrected; its translation into en follows\\."]
    stored = [t.value for t in at.text if t.value.startswith("[")]
    assert stored == [
        "[de] Wir verschieben das Treffen auf <b>Mittwoch</b>.",
        "[en] EN Wir verschieben das Treffen auf <b>Mittwoch</b>.",
    ]
    # the view follows at once: the corrected text, marked, the mark explained in its help
    table = session_table(at)
    assert list(table["transcript"])[1] == D.escape_markdown("Wir verschieben das Treffen auf <b>Mittwoch</b>.")
    assert list(table[R.MARK_COLUMN]) == ["", R.CORRECTED_MARK, ""]
    [legend] = [c for c in at.caption if c.value == R.CORRECTED_MARK]
    assert legend.proto.help == R.CORRECTED_HELP
    markdown = [m.value for kind in ("markdown", "caption", "success", "error", "warning") for m in at.get(kind)]
    assert not [m for m in markdown if "<b>" in m]  # the markup went to plain-text elements only


def test_a_correction_too_long_is_refused_plainly_and_nothing_is_sent(page):
    at = page.run()
    by_label(at.toggle, "Correct a line").set_value(True).run()
    by_label(at.selectbox, "Line").select(2).run()
    by_label(at.text_area, "Corrected text").input("a" * 10_000)
    by_label(at.button, "Save correction").click().run()
    assert not at.exception and not FakeServer.edits
    assert [e.value for e in at.main.error] == [
        D.escape_markdown("Not saved: A correction is at most 2000 characters, got 10000.")
    ]
    assert R.MARK_COLUMN not in session_table(at).columns


def test_a_stored_summary_is_shown_and_the_summarize_button_says_why_none_came(page, monkeypatch):
    FakeServer.events.append(Event(EventKind.SUMMARY, f"Summary: {HOSTILE}\n\nDecisions:\n- none", 2, language="en"))
    asked = []

    def refused(client, session, language):
        asked.append((session, language))
        raise ClientError("the configured LLM is a completion model without instructions: it cannot summarize")

    monkeypatch.setattr("livetranslate.client.summarize", refused)
    at = page.run()
    languages = by_label(at.button_group, "Summary language")
    assert languages.value == "en" and languages.options[:2] == ["English (en)", "German (de)"]  # target first
    assert f"Summary: {HOSTILE}\n\nDecisions:\n- none" in [t.value for t in at.text]  # as text, stored
    assert not asked
    by_label(at.button_group, "Summary language").set_value("de").run()
    assert not [t for t in at.text if t.value.startswith("Summary:")]  # none in German
    by_label(at.button, "Summarize").click().run()
    deadline = time.monotonic() + 10
    while not at.main.error and time.monotonic() < deadline:
        time.sleep(0.1)
        at.run()
    assert asked == [("standup", "de")]
    assert [e.value for e in at.main.error] == [
        D.escape_markdown(
            "No summary: The configured LLM is a completion model without instructions: it cannot summarize"
        )
    ]


def test_without_a_login_or_with_a_share_link_nobody_can_correct_or_summarize(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    import livetranslate.client
    from livetranslate.share import share_token

    FakeServer.events, FakeServer.edits = meeting(), []
    monkeypatch.setattr(livetranslate.client, "PipelineClient", FakeServer)
    users = tmp_path / "users.yaml"
    D.add_user(users, "alice", "right-password")
    monkeypatch.setenv(D.CREDENTIALS_ENV, str(users))
    monkeypatch.delenv(D.NO_LOGIN_ENV, raising=False)
    monkeypatch.setenv(D.COOKIE_KEY_ENV, "test-cookie-key-0123456789abcdef")
    for name in ("LIVETRANSLATE_URL", "LIVETRANSLATE_HTTP_URL"):
        monkeypatch.setenv(name, "127.0.0.1:1" if name == "LIVETRANSLATE_URL" else "http://127.0.0.1:1")
    token = share_token("standup", "test-cookie-key-0123456789abcdef")
    for query in ({"session": "standup", "token": token}, {"view": "captions", "session": "standup", "token": token}):
        at = AppTest.from_file(str(APP), default_timeout=30)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception
        assert not [t for t in at.toggle if t.label == "Correct a line"] and not at.text_area
        assert not [b for b in at.button if b.label in ("Save correction", "Summarize", "Summarize again")]
        if "view" not in query:  # the login form: no transcript either
            assert "Guten Morgen" not in repr(at._tree) and [t.label for t in at.text_input] == [
                "User name",
                "Password",
            ]
