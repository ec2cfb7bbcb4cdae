"""An organiser corrects a line, names a speaker and asks for a summary in the dashboard
(AppTest, logged in), against the real server: the correction is stored with the session and
translated, the view shows it marked, a name is stored and the table follows, bad input gets a
plain answer, and the tests' small Gemma model refuses a summary in plain words."""

import time
import uuid
from pathlib import Path

import pytest

from livetranslate import dashboard as D
from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.dashboard import revisions as R
from livetranslate.protocol import EventKind, SessionOptions

pytestmark = pytest.mark.slow
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def speak(url: str, path, name: str) -> list:
    pcm, rate = read_audio(path)
    with PipelineClient(url) as client:
        return list(client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=False))


def by_label(widgets, label):
    [widget] = [w for w in widgets if w.label == label]
    return widget


def save(at, text: str):
    by_label(at.text_area, "Corrected text").input(text)
    return by_label(at.button, "Save correction").click().run()


def logged_in(server, tmp_path, monkeypatch):
    """The dashboard (AppTest) of this server with a login, logged in as alice."""
    from streamlit.testing.v1 import AppTest

    users = tmp_path / "users.yaml"
    D.add_user(users, "alice", "right-password")
    for key, value in {
        "LIVETRANSLATE_URL": server.grpc_url,
        "LIVETRANSLATE_HTTP_URL": server.http_url,
        "LIVETRANSLATE_METRICS_URL": f"http://localhost:{server.options.metrics_port}/metrics",
        D.CREDENTIALS_ENV: str(users),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(D.NO_LOGIN_ENV, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    assert not at.exception and not at.toggle  # the login form, nothing to correct
    by_label(at.text_input, "User name").input("alice")
    by_label(at.text_input, "Password").input("right-password")
    by_label(at.button, "Log in").click().run()
    return at


def test_an_organiser_corrects_a_line_in_the_dashboard_and_the_server_keeps_it(
    server, audio_files, tmp_path, monkeypatch
):
    name = f"dash-edit-{uuid.uuid4().hex[:8]}"
    spoken = speak(server.grpc_url, audio_files["speech_b"], name)
    assert spoken[-1].kind == EventKind.END and not spoken[-1].error
    first = next(e for e in spoken if e.kind == EventKind.TRANSCRIPT)

    at = logged_in(server, tmp_path, monkeypatch)
    assert not at.exception
    at.selectbox[0].select(name).run()
    by_label(at.toggle, "Correct a line").set_value(True).run()
    by_label(at.selectbox, "Line").select(first.segment_id).run()
    assert by_label(at.text_area, "Corrected text").value == first.text

    fixed = "Morgen wird es sonnig und warm, sagt der <b>Wetterbericht</b>."
    save(at, fixed)
    assert not at.exception
    [done] = [s.value for s in at.main.success]
    assert done.startswith(f"Line \\#{first.segment_id} is corrected"), done
    assert f"[de] {fixed}" in [t.value for t in at.text]  # what the server stored, as text
    assert [t.value for t in at.text if t.value.startswith("[en] ")], [t.value for t in at.text]
    table = next(t.value for t in at.table if "transcript" in t.value.columns)
    row = table.loc[first.segment_id]
    assert row["transcript"] == D.escape_markdown(fixed) and row[R.MARK_COLUMN] == R.CORRECTED_MARK
    with PipelineClient(server.grpc_url) as client:
        stored = client.sessions("get", name)["events"]
    corrections = [e for e in stored if e.kind == EventKind.CORRECTION and e.segment_id == first.segment_id]
    assert [(e.language, e.text) for e in corrections][0] == ("de", fixed)  # kept beside the original
    assert {e.language for e in corrections} == {"de", "en"}
    assert [e.text for e in stored if e.kind == EventKind.TRANSCRIPT][0] == first.text

    # a correction of 10,000 characters: a plain answer, nothing sent
    save(at, "a" * 10_000)
    assert not at.exception
    assert [e.value for e in at.main.error] == [
        D.escape_markdown("Not saved: A correction is at most 2000 characters, got 10000.")
    ]
    with PipelineClient(server.grpc_url) as client:
        assert len(client.sessions("get", name)["events"]) == len(stored)

    # the tests' Gemma is a completion model: the summary is refused, in plain words
    assert by_label(at.button_group, "Summary language").value == "en"
    by_label(at.button, "Summarize").click().run()
    deadline = time.monotonic() + 300
    while not [e for e in at.main.error if "summary" in e.value.lower()] and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception
    [refused] = [e.value for e in at.main.error if "summary" in e.value.lower()]
    assert refused.startswith("No summary") and "cannot summarize" in refused, refused


def test_an_organiser_names_a_speaker_in_the_dashboard_and_every_view_follows(server, tmp_path, monkeypatch):
    from livetranslate.protocol import Event
    from livetranslate.store import SessionStore

    name = f"dash-name-{uuid.uuid4().hex[:8]}"
    store = SessionStore(server.options.data_dir, fsync=False)
    store.open(name, "de", "en")
    for i, (de, who) in enumerate([("Guten Morgen.", "S1"), ("Hallo.", "S2"), ("Los geht's.", "S1")]):
        store.append(name, Event(EventKind.TRANSCRIPT, de, i, 2.0 * i, 2.0 * i + 1.5, "de", speaker=who))
    store.close(name)
    at = logged_in(server, tmp_path, monkeypatch)
    at.selectbox[0].select(name).run()
    table = next(t.value for t in at.table if "transcript" in t.value.columns)
    assert list(table["speaker"]) == ["S1", "S2", "S1"]
    by_label(at.toggle, "Name a speaker").set_value(True).run()
    by_label(at.selectbox, "Speaker").select("S2").run()
    by_label(at.text_input, "Name").input("Bob <b>B.</b>")
    by_label(at.button, "Save name").click().run()
    assert not at.exception
    [done] = [s.value for s in at.main.success]
    assert done == D.escape_markdown("S2 is Bob <b>B.</b> from now on, for every reader and in the exports.")
    table = next(t.value for t in at.table if "transcript" in t.value.columns)
    assert list(table["speaker"]) == ["S1", D.escape_markdown("Bob <b>B.</b>"), "S1"]
    with PipelineClient(server.grpc_url) as client:
        stored = client.sessions("get", name)["events"]
    assert [(e.speaker, e.text) for e in stored if e.kind == EventKind.SPEAKER_NAME] == [("S2", "Bob <b>B.</b>")]
    # an empty name: a plain answer, nothing stored
    by_label(at.text_input, "Name").input("   ")
    by_label(at.button, "Save name").click().run()
    assert [e.value for e in at.main.error] == [
        D.escape_markdown("Not saved: A speaker's name needs at least one letter (it is empty)")
    ]
    with PipelineClient(server.grpc_url) as client:
        assert len(client.sessions("get", name)["events"]) == len(stored)
