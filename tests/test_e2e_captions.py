"""The captions page and the dashboard's session flow against a real server, a real
`livetranslate dashboard` behind a login and headless Chromium: share links made by
`livetranslate share`, two languages at once, the interim text, the newest live session
followed without a reload, a tampered token, and an upload from the browser."""

import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import ARTIFACTS, free_port
from test_e2e_dashboard import dashboard_env, speak

from livetranslate import dashboard as D
from livetranslate import share
from livetranslate.client import PipelineClient
from livetranslate.protocol import EventKind

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]
SECRET = "test-dashboard-secret-0123456789"
# records, in the page, when each caption line first shows and every interim text in turn
OBSERVE = """() => {
  window.__seen = {}; window.__interims = []; window.__page = Math.random();
  const note = () => {
    const now = Date.now();
    document.querySelectorAll('.lt-line').forEach(el => {
      const t = el.textContent.trim(); if (!(t in window.__seen)) window.__seen[t] = now; });
    const el = document.querySelector('.lt-interim'), text = el ? el.textContent.trim() : '';
    if (window.__interims[window.__interims.length - 1] !== text) window.__interims.push(text);
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
  note();
}"""


@pytest.fixture(scope="module")
def board(server, tmp_path_factory):
    """A dashboard with a login; its secret in its environment, as `livetranslate share` reads it."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("captions")
    users = tmp / "users.yaml"
    D.add_user(users, "alice", "right-password")
    port = free_port()
    env = {**os.environ, share.COOKIE_KEY_ENV: SECRET, share.KEY_FILE_ENV: str(tmp / "key"), "TMPDIR": str(tmp)}
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
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        deadline = time.monotonic() + 60
        while True:
            try:
                page.goto(url, timeout=10_000)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        page.close()
        try:
            yield {"url": url, "browser": browser, "env": env, "tmp": tmp}
        finally:
            browser.close()
            app.terminate()
            app.wait(10)


def share_link(board, session, *more):
    out = subprocess.run(
        CLI + ["share", session, "--dashboard", board["url"], "--ahead", *more],  # shared before it starts
        env=board["env"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def open_captions(board, link, viewport=(412, 860)):
    page = board["browser"].new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.goto(link)
    page.wait_for_selector(".lt-status", state="attached", timeout=60_000)
    page.evaluate(OBSERVE)
    return page


def log_in(page, url):
    page.goto(url)
    page.get_by_label("User name", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill("right-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Server", exact=True).wait_for(timeout=60_000)


def watched(url, name, received):
    """A viewer in the test, there as the session starts: when each event reached a client
    (the page's yardstick)."""
    with PipelineClient(url) as client:
        while not received:
            for event in client.watch(name):
                if event.kind == EventKind.END and event.error and not received:
                    time.sleep(0.02)  # no such session yet
                    break
                received.append((time.time() * 1000, event))


def test_captions_follow_the_newest_live_session_and_the_dashboard_lists_it(server, audio_files, board):
    page = board["browser"].new_page(viewport={"width": 1280, "height": 720})
    dash = board["browser"].new_page(viewport={"width": 1400, "height": 1000})
    try:
        log_in(page, board["url"])
        log_in(dash, board["url"])
        page.goto(f"{board['url']}/?view=captions&lang=de&style=transparent")
        page.wait_for_selector(".lt-status", state="attached", timeout=60_000)
        page.evaluate(OBSERVE)
        marker = page.evaluate("window.__page")
        for name, audio in (("cap-first", "speech_b"), ("cap-second", "speech")):
            spoken, started = [], threading.Event()
            speaker = threading.Thread(target=speak, args=(server.grpc_url, audio_files[audio], name, spoken, started))
            speaker.start()
            assert started.wait(90)
            page.wait_for_function(
                f"document.querySelector('.lt-status').textContent.includes({name!r})", timeout=30_000
            )
            # the dashboard lists the new session without a reload, marked live
            dash.wait_for_function(f"document.body.innerText.includes('LIVE now: ' + {name!r})", timeout=15_000)
            speaker.join(180)
            first_sentence = next(e.text for e in spoken if e.kind == EventKind.TRANSCRIPT)
            page.wait_for_function(
                f"Object.keys(window.__seen).some(t => t.includes({first_sentence!r}))", timeout=30_000
            )
        assert page.evaluate("window.__page") == marker  # the same page all along: no reload
        # transparent for OBS: nothing behind the text
        assert page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor") in (
            "rgba(0, 0, 0, 0)",
            "transparent",
        )
    finally:
        page.screenshot(path=str(ARTIFACTS / "captions-newest.png"))
        dash.screenshot(path=str(ARTIFACTS / "dashboard-list.png"), full_page=True)
        page.close()
        dash.close()


def test_captions_from_a_share_link_in_two_languages_with_the_interim_text(server, audio_files, board):
    # (after a first session: on a cold server Whisper is busy enough that partials are skipped)
    name = "cap-live"
    link_en, link_de = share_link(board, name, "--lang", "en"), share_link(board, name, "--lang", "de")
    assert f"token={share.share_token(name, SECRET)}" in link_en and "lang=de" in link_de
    english = open_captions(board, link_en, viewport=(1920, 1080))  # a projector
    german = open_captions(board, link_de)  # a phone
    tampered = board["browser"].new_page()
    tampered.goto(link_en.replace("token=", "token=0")[:-1])
    try:
        english.get_by_text("Waiting for “cap-live” to start").wait_for(timeout=30_000)
        received = []
        viewer = threading.Thread(target=watched, args=(server.grpc_url, name, received), daemon=True)
        viewer.start()
        time.sleep(0.5)
        spoken, started = [], threading.Event()
        speaker = threading.Thread(target=speak, args=(server.grpc_url, audio_files["speech"], name, spoken, started))
        speaker.start()
        assert started.wait(90)
        speaker.join(180)
        viewer.join(60)
        ends = [e for e in spoken if e.kind == EventKind.END]
        assert ends and not ends[0].error
        english.wait_for_function("document.querySelector('.lt-status').textContent.includes('ended')", timeout=30_000)
        german.wait_for_function("document.querySelector('.lt-status').textContent.includes('ended')", timeout=30_000)
        seen_en, seen_de = english.evaluate("window.__seen"), german.evaluate("window.__seen")
        interims = german.evaluate("window.__interims")
    finally:
        for p, shot in ((english, "captions-en.png"), (german, "captions-de.png"), (tampered, "captions-bad.png")):
            p.screenshot(path=str(ARTIFACTS / shot))

    translations = [e for e in spoken if e.kind == EventKind.TRANSLATION and e.text]
    transcripts = [e for e in spoken if e.kind == EventKind.TRANSCRIPT]
    assert len(transcripts) >= 4 and translations
    # each language on its own page: the English translations, the German transcripts
    shown_en, shown_de = " ".join(seen_en), " ".join(seen_de)
    assert all(t.text in shown_de for t in transcripts) and transcripts[-1].text not in shown_en
    # (a translation replaced by its translation in context within one refresh is never drawn)
    assert sum(t.text in shown_en for t in translations) >= len(translations) - 1
    assert not [t for t in translations if t.text in shown_de]
    # within a few seconds of the event reaching a client
    delays = []
    for at_ms, event in received:
        if event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION) and event.text:
            page_seen = seen_de if event.kind == EventKind.TRANSCRIPT else seen_en
            first = [t for line, t in page_seen.items() if line.endswith(event.text.strip())]
            if first:
                delays.append(first[0] - at_ms)
    assert len(delays) >= 4 and max(delays) < 5000, delays
    # the interim text showed while a sentence was spoken, and each was replaced (by more
    # words, or by the sentence made final)
    partials = [e for _, e in received if e.kind == EventKind.PARTIAL]
    assert partials, (
        f"no interim text reached a viewer (the speaker got {sum(e.kind == EventKind.PARTIAL for e in spoken)})"
    )
    texts = [t for t in interims if t]
    assert texts, (interims, partials)
    # replaced: by more words, or by its sentence made final (shown as a line), and gone at the end
    assert interims[-1] == ""
    # (Whisper's partial may still differ from its final in the first word: "Das" then "Die")
    replaced = [t for t in texts if any(line.startswith(t.split()[0]) for line in seen_de)]
    assert len(replaced) >= len(texts) / 2, (texts, list(seen_de))
    # a tampered token: a clear message and nothing of any session
    body = tampered.inner_text("body")
    assert "This captions link is not valid" in body and "cap-" not in body
    assert not [t for t in transcripts if t.text in body] and tampered.query_selector(".lt-line") is None
    for p in (english, german, tampered):
        p.close()


def give_file(page, path) -> None:
    """Puts a file into the page's uploader. A rerun that the inputs before it caused may
    replace the uploader while the file goes in (the file is then lost, once in a CI run):
    tried again until the uploader lists it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        page.wait_for_timeout(1000)
        page.locator("input[type=file]").set_input_files(str(path))
        try:
            page.get_by_text(path.name).first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the uploader never listed {path.name}")


def test_an_upload_keeps_its_typed_name_lands_on_its_session_and_runs_at_server_speed(server, audio_files, board):
    tmp = board["tmp"]
    # speech, a long pause, speech: the pause costs the server next to nothing, so a file sent
    # as fast as the server takes it is done well before its length (one paced in real time
    # cannot be), even on a busy machine
    upload = tmp / "long.ogg"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(audio_files["speech_b"]),
            "-f",
            "lavfi",
            "-t",
            "60",
            "-i",
            "anullsrc=r=22050:cl=mono",
            "-i",
            str(audio_files["speech_b"]),
            "-filter_complex",
            "[0:a]aformat=sample_rates=22050:channel_layouts=mono[a];[2:a]aformat=sample_rates=22050:"
            "channel_layouts=mono[c];[a][1:a][c]concat=n=3:v=0:a=1",
            "-c:a",
            "libvorbis",
            str(upload),
        ],
        check=True,
        timeout=60,
    )
    seconds = float(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(upload)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    page = board["browser"].new_page(viewport={"width": 1400, "height": 1000})
    try:
        log_in(page, board["url"])
        page.get_by_text("New session from a file").click()
        name_box = page.get_by_label("Session name", exact=True)
        name_box.fill("cap-upload")  # typed, no Enter: other inputs come next
        page.get_by_text("Translate", exact=True).click()
        page.get_by_text("Translate", exact=True).click()
        give_file(page, upload)
        # the upload is in when Start is enabled (every rerun its inputs caused is done)
        page.wait_for_function(
            "[...document.querySelectorAll('button')].some(b => b.innerText.trim() == 'Start' && !b.disabled)",
            timeout=120_000,
        )
        page.wait_for_timeout(1500)
        assert name_box.input_value() == "cap-upload"
        started = time.monotonic()
        page.get_by_role("button", name="Start").click()
        # the view lands on the session it started, with its progress and the LIVE badge
        page.wait_for_function("location.search.includes('session=cap-upload')", timeout=30_000)
        page.get_by_text("cap-upload: streaming").wait_for(timeout=60_000)
        page.get_by_text("LIVE", exact=True).first.wait_for(timeout=30_000)
        page.get_by_text("cap-upload: done").wait_for(timeout=120_000)
        took = time.monotonic() - started
        assert "Deploy" not in page.inner_text("body")  # no Streamlit chrome
        # another browser, another user's view: the progress of this upload is not theirs
        other = board["browser"].new_context(viewport={"width": 1400, "height": 1000}).new_page()
        log_in(other, f"{board['url']}/?session=cap-upload")
        other.get_by_text("sentences").first.wait_for(timeout=30_000)
        assert "cap-upload:" not in other.inner_text("body") and "cap-upload" in other.inner_text("body")
        other.close()
    finally:
        page.screenshot(path=str(ARTIFACTS / "dashboard-upload.png"), full_page=True)
        page.close()
    assert took < 0.8 * seconds, f"{took:.1f} s for {seconds:.1f} s of audio: paced in real time?"
    with PipelineClient(server.grpc_url) as client:
        stored = client.sessions("get", "cap-upload")["events"]
    assert sum(e.kind == EventKind.TRANSCRIPT for e in stored) >= 5  # the speech on both sides of the pause
