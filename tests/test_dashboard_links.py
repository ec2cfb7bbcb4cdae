"""The dashboard's addresses and links name a session by its name alone (never the label its
list shows), and its upload form asks the server for the languages chosen in it."""

from pathlib import Path

import pytest

from livetranslate.dashboard.status import address_params, session_from_address, session_label
from livetranslate.dashboard.uploads import (
    DEFAULT_SPOKEN,
    DEFAULT_TARGET,
    SPOKEN_LANGUAGES,
    TARGET_LANGUAGES,
    language_label,
    upload_session,
)
from livetranslate.protocol import AUTO_LANGUAGE, ProtocolError, SessionOptions, decode_text
from livetranslate.share import share_link

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


# --- links ------------------------------------------------------------------------------------
def test_the_address_names_the_session_and_the_label_is_only_shown():
    live, ended = {"name": "standup", "state": "live"}, {"name": "Weekly (Team)", "state": "ended"}
    assert session_label(live) == "standup  ● LIVE" and session_label(ended) == "Weekly (Team) (ended)"
    names = {"standup": live, "Weekly (Team)": ended}
    # the address holds the name, whatever the list shows of it now
    assert address_params({}, "standup") == {"session": "standup"}
    assert address_params({"session": "standup  ● LIVE", "other": "1"}, "Weekly (Team)") == {
        "session": "Weekly (Team)",
        "other": "1",
    }
    assert address_params({"session": "standup"}, None) == {}  # nothing chosen: nothing named
    # an address names a session by its name; one from an older dashboard carried the label
    assert session_from_address("standup", names) == "standup"
    assert session_from_address("Weekly (Team)", names) == "Weekly (Team)"  # parentheses of its own
    assert session_from_address("standup  ● LIVE", names) == "standup"
    assert session_from_address("standup (ended)", names) == "standup"  # it was live, it ended
    assert session_from_address("Weekly (Team) (live)", names) == "Weekly (Team)"
    assert session_from_address("gone  ● LIVE", names) is None
    assert session_from_address("", names) is None and session_from_address(None, names) is None


def test_a_share_link_carries_the_session_name_only():
    link = share_link("https://board.example.com/", "Weekly (Team) & co", "fr", "t0ken")
    assert link == "https://board.example.com/?view=captions&session=Weekly%20%28Team%29%20%26%20co&lang=fr&token=t0ken"
    assert "LIVE" not in link and "ended" not in link


class FakeClient:
    """The server, as the dashboard's PipelineClient sees it: two stored sessions."""

    listed = [
        {
            "name": "weekly review",
            "state": "ended",
            "source_language": "de",
            "target_language": "en",
            "counts": {"transcript": 0},
            "started_at": 1.0,
            "ended_at": 2.0,
        },
        {
            "name": "standup",
            "state": "ended",
            "source_language": "de",
            "target_language": "fr",
            "counts": {"transcript": 0},
            "started_at": 0.0,
            "ended_at": 1.0,
        },
    ]

    def __init__(self, *args, **kwargs):
        pass

    def sessions(self, action, session=""):
        if action == "list":
            return self.listed
        return {"info": next(s for s in self.listed if s["name"] == session), "events": []}

    def close(self):
        pass


@pytest.fixture
def app(monkeypatch):
    """The dashboard without a login (loopback), in front of FakeClient."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    import livetranslate.client

    monkeypatch.setattr(livetranslate.client, "PipelineClient", FakeClient)
    for name in ("LIVETRANSLATE_DASHBOARD_CREDENTIALS", "LIVETRANSLATE_SETTINGS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIVETRANSLATE_DASHBOARD_NO_LOGIN", "1")
    monkeypatch.setenv("LIVETRANSLATE_URL", "127.0.0.1:1")  # health: nothing there, said plainly
    monkeypatch.setenv("LIVETRANSLATE_HTTP_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("LIVETRANSLATE_METRICS_URL", "http://127.0.0.1:1/metrics")
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield AppTest.from_file(str(APP), default_timeout=30)
    config.set_option("server.address", before)


def test_the_dashboards_address_holds_the_chosen_sessions_name(app):
    at = app.run()
    assert not at.exception
    [chooser] = at.selectbox
    assert chooser.options == ["weekly review (ended)", "standup (ended)"]  # what the list shows
    assert at.query_params["session"] == "weekly review"  # the newest, by name
    chooser.select("standup").run()
    assert not at.exception and at.query_params["session"] == "standup"


def test_an_address_from_an_older_dashboard_still_finds_its_session(app):
    app.query_params["session"] = "standup  ● LIVE"  # the label went into addresses
    at = app.run()
    assert not at.exception and at.selectbox[0].value == "standup"
    assert at.query_params["session"] == "standup"


# --- the upload form's languages --------------------------------------------------------------
def test_the_upload_form_offers_every_language_and_auto_detect_for_the_spoken_one(app):
    assert SPOKEN_LANGUAGES[0] == AUTO_LANGUAGE and AUTO_LANGUAGE not in TARGET_LANGUAGES
    assert set(SPOKEN_LANGUAGES[1:]) == set(TARGET_LANGUAGES) and {"de", "en", "fr", "zh"} <= set(TARGET_LANGUAGES)
    assert language_label("de") == "German (de)" and "auto" in language_label(AUTO_LANGUAGE).lower()
    at = app.run()
    at.radio[0].set_value("New session from a file").run()
    assert not at.exception
    boxes = {box.label: box for box in at.selectbox}
    assert boxes["Spoken language"].value == DEFAULT_SPOKEN and boxes["Translate into"].value == DEFAULT_TARGET
    assert boxes["Spoken language"].options[0] == language_label(AUTO_LANGUAGE)
    boxes["Spoken language"].select(AUTO_LANGUAGE)
    boxes["Translate into"].select("ja").run()
    at.radio[0].set_value("Sessions").run()  # another page and back: the choice is kept
    at.radio[0].set_value("New session from a file").run()
    boxes = {box.label: box for box in at.selectbox}
    assert boxes["Spoken language"].value == AUTO_LANGUAGE and boxes["Translate into"].value == "ja"
    assert at.session_state["upload-spoken"] == AUTO_LANGUAGE and at.session_state["upload-target"] == "ja"


def test_the_chosen_languages_reach_the_servers_request():
    from livetranslate.protocol import SOURCE_LANGUAGE, TARGET_LANGUAGE, TRANSLATE_FLAG

    options = upload_session("  interview ", AUTO_LANGUAGE, "ja")
    tensors = options.to_tensors()  # the first request of the upload's stream carries these
    assert decode_text(tensors[SOURCE_LANGUAGE]) == "auto" and decode_text(tensors[TARGET_LANGUAGE]) == "ja"
    server = SessionOptions.from_tensors(tensors.get, "unnamed")  # what the pipeline reads of it
    assert (server.session, server.source_language, server.target_language) == ("interview", "auto", "ja")
    assert server.whisper_language == "" and server.translate  # auto: Whisper detects it
    spoken = upload_session("talk", "fr", "de", translate=False)
    assert spoken.whisper_language == "fr" and not bool(spoken.to_tensors()[TRANSLATE_FLAG][0])
    assert upload_session("talk", "", "").source_language == DEFAULT_SPOKEN  # nothing chosen: the defaults
    with pytest.raises(ProtocolError, match="translation language"):
        upload_session("talk", "de", AUTO_LANGUAGE)  # a translation cannot be detected
    with pytest.raises(ProtocolError, match="SESSION"):
        upload_session("   ", "de", "en")
