"""The dashboard against a real server: behind its login (AppTest, and headless Chromium
driving `livetranslate dashboard`), with live sessions and a session whose text is hostile."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS, free_port, launch_chromium

from livetranslate import dashboard as D
from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.present import readable
from livetranslate.protocol import Event, EventKind, SessionOptions
from livetranslate.store import SessionStore

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
HOSTILE = "![x](http://evil/x.png) <img src=x onerror=alert(1)> [link](http://evil)"


def speak(url, path, name, received, started=None):
    pcm, rate = read_audio(path)
    with PipelineClient(url) as client:
        for event in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=True):
            received.append(event)
            if started is not None and event.kind == EventKind.TRANSCRIPT:
                started.set()


def store_hostile_session(server, name):
    """A stored session whose transcript, translation and enhanced text would, read as
    Markdown or HTML, load a remote image, run a script and make a link."""
    store = SessionStore(server.options.data_dir, fsync=False)
    store.open(name, "de", "en")
    for event in (
        Event(EventKind.TRANSCRIPT, HOSTILE, 0, 0.0, 2.0, "de"),
        Event(EventKind.TRANSLATION, "translated " + HOSTILE, 0, 0.0, 2.0, "en"),
        Event(EventKind.ENHANCED, "enhanced " + HOSTILE, 0, 0.0, 2.0, "en", first_segment_id=0),
    ):
        store.append(name, event)
    store.close(name)


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users.yaml"
    D.add_user(path, "alice", "right-password")
    return path


def dashboard_env(server):
    return {
        "LIVETRANSLATE_URL": server.grpc_url,
        "LIVETRANSLATE_HTTP_URL": server.http_url,
        "LIVETRANSLATE_METRICS_URL": f"http://localhost:{server.options.metrics_port}/metrics",
    }


def log_in(at, user, password):
    [name_box] = [t for t in at.text_input if t.label == "User name"]
    [password_box] = [t for t in at.text_input if t.label == "Password"]
    name_box.input(user)
    password_box.input(password)
    [button] = [b for b in at.button if b.label == "Log in"]
    return button.click().run()


def test_dashboard_app_logic(server, audio_files, users, monkeypatch):
    from streamlit.testing.v1 import AppTest

    speak(server.grpc_url, audio_files["speech"], "apptest-spoken", [])
    store_hostile_session(server, "apptest-hostile")
    for k, v in {**dashboard_env(server), D.CREDENTIALS_ENV: str(users)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv(D.NO_LOGIN_ENV, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and [t.label for t in at.text_input] == ["User name", "Password"]
    assert "apptest-" not in repr(at._tree) and not at.selectbox and not at.sidebar.children
    log_in(at, "alice", "wrong-password")
    assert [e.value for e in at.error] == ["Wrong user name or password"]
    assert "apptest-" not in repr(at._tree) and not at.selectbox and not at.sidebar.children

    log_in(at, "alice", "right-password")
    assert not at.exception
    assert any(s.value == "Ready" for s in at.sidebar.success)
    assert {"apptest-spoken (ended)", "apptest-hostile (ended)"} <= set(at.selectbox[0].options)
    at.selectbox[0].select("apptest-spoken").run()
    [table] = [t.value for t in at.table if "transcript" in t.value.columns]
    assert "Projekt" in " ".join(table["transcript"]) and len(table) == 5
    assert all(table["translation"])  # side by side with the transcript
    assert [b.label for b in at.get("download_button")] == [f"Download {f}" for f in ("txt", "srt", "vtt", "jsonl")]

    # the hostile text goes to plain-text elements only; no Markdown element carries it
    at.selectbox[0].select("apptest-hostile").run()
    [table] = [t.value for t in at.table if "transcript" in t.value.columns]
    # st.table reads Markdown: its cells hold the text escaped (the browser test sees it literal)
    assert list(table["transcript"]) == [D.escape_markdown(HOSTILE)]
    assert list(table["translation"]) == [D.escape_markdown("translated " + HOSTILE)]
    # the translation in context says something else than the sentence's: shown, under its plain name
    assert list(table[readable.COMBINED_NAME]) == [D.escape_markdown("enhanced " + HOSTILE)]
    markdown = [
        m.value for kind in ("markdown", "caption", "info", "error", "warning", "success") for m in at.get(kind)
    ]
    assert not [m for m in markdown if "](http://evil" in m or "<img" in m]


def test_dashboard_in_a_real_browser(server, audio_files, users, tmp_path):
    from playwright.sync_api import sync_playwright

    store_hostile_session(server, "browser-hostile")
    port = free_port()
    # the cookie key and (had the server one) the API key come by environment, never argv
    env = {**os.environ, D.COOKIE_KEY_ENV: "test-cookie-key-0123456789abcdef", "TMPDIR": str(tmp_path)}
    # a compressed upload: decoded by ffmpeg's libraries a packet at a time
    upload = tmp_path / "weather.ogg"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(audio_files["speech_b"]), "-c:a", "libvorbis", str(upload)],
        check=True,
        timeout=60,
    )
    app = subprocess.Popen(
        CLI
        + [
            "dashboard",
            "--port",
            str(port),
            "--credentials",
            str(users),
            "--url",
            server.grpc_url,
            "--http-url",
            server.http_url,
            "--metrics-url",
            dashboard_env(server)["LIVETRANSLATE_METRICS_URL"],
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spoken, started = [], threading.Event()
    speaker = threading.Thread(
        target=speak, args=(server.grpc_url, audio_files["speech"], "browser-spoken", spoken, started)
    )
    try:
        speaker.start()
        assert started.wait(60)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requested = []
            page.on("request", lambda r: requested.append(r.url))
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}", timeout=10_000)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            try:
                login_button = page.get_by_role("button", name="Log in")
                login_button.wait_for(timeout=60_000)
                page.wait_for_timeout(2000)  # whatever else the page would show has come by now
                assert "browser-" not in page.content() and "Server" not in page.inner_text("body")
                page.get_by_label("User name", exact=True).fill("alice")
                page.get_by_label("Password", exact=True).fill("wrong-password")
                login_button.click()
                page.get_by_text("Wrong user name or password").wait_for(timeout=30_000)
                page.wait_for_timeout(2000)
                assert "browser-" not in page.content() and "Projekt" not in page.content()

                page.get_by_label("Password", exact=True).fill("right-password")
                login_button.click()
                page.wait_for_function("document.body.innerText.includes('Projekt')", timeout=90_000)
                speaker.join(90)
                page.wait_for_function("document.body.innerText.includes('Kunden')", timeout=60_000)  # live update
                page.reload()  # the login cookie keeps the visitor logged in
                page.wait_for_function("document.body.innerText.includes('Projekt')", timeout=60_000)

                page.get_by_test_id("stSelectbox").click()
                page.get_by_role("option", name="browser-hostile (ended)").click()
                # transcript, translation and enhanced text, each literally as stored
                page.wait_for_function(f"document.body.innerText.split({HOSTILE!r}).length > 3", timeout=30_000)
                for shown in ("enhanced " + HOSTILE, "translated " + HOSTILE):
                    assert shown in page.inner_text("body")
                assert (
                    page.evaluate(
                        "[...document.querySelectorAll('img')].filter(i => "
                        "!i.src.startsWith(location.origin) && !i.src.startsWith('data:')).length"
                    )
                    == 0
                )
                assert page.evaluate("document.querySelectorAll('a[href*=evil]').length") == 0
                assert not [url for url in requested if "evil" in url]

                # a session from an uploaded file: streamed from a temporary copy, removed at the end
                page.get_by_text("New session from a file").click()
                page.locator("input[type=file]").set_input_files(str(upload))
                page.get_by_label("Session name", exact=True).fill("browser-upload")
                page.get_by_label("Session name", exact=True).press("Enter")
                page.get_by_role("button", name="Start").click()
                # (streamed as fast as the server takes it: its temporary copy lives a few seconds)
                page.get_by_text("browser-upload: done").wait_for(timeout=90_000)
                assert not list(tmp_path.glob("livetranslate-upload-*"))
            finally:
                page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
                browser.close()
    finally:
        app.terminate()
        app.wait(10)
    # `livetranslate dashboard` is the streamlit process itself: stopping it leaves nothing behind
    assert not [
        line
        for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
        if "streamlit run" in line and f"--server.port {port}" in line
    ]
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    with PipelineClient(server.grpc_url) as client:
        stored = client.sessions("get", "browser-upload")["events"]
    assert sum(e.kind == EventKind.TRANSCRIPT for e in stored) >= 2  # the upload reached the server whole
