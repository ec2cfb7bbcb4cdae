"""The captions page and the dashboard's session flow against a real server, a real
`livetranslate dashboard` behind a login and headless Chromium: share links made by
`livetranslate share`, two languages at once, the interim text, the newest live session
followed without a reload, a tampered token, and an upload from the browser. The page as a
place to read a meeting, on a phone (390x844) and a wall display (1920x1080): nothing
overlaps the text, the first and the newest line are in full view, reading back holds while
lines come, the text size and the bilingual view are remembered, and hostile text, a link
with control characters or a text size out of range stay harmless. Screenshots go to
artifacts/ (their paths are printed)."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import ARTIFACTS, free_port, launch_chromium
from test_e2e_dashboard import dashboard_env, speak

from livetranslate import dashboard as D
from livetranslate import share
from livetranslate.client import PipelineClient
from livetranslate.present import readable
from livetranslate.protocol import EventKind

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]
SECRET = "test-dashboard-secret-0123456789"
FRAME = 'iframe[title$="livetranslate_captions"]'  # the captions component, over the whole page
# records, in the captions component, when each caption line first shows and every interim text in turn
OBSERVE = """() => {
  window.__seen = {}; window.__interims = []; window.__page = Math.random();
  const note = () => {
    const now = Date.now();
    document.querySelectorAll('.lt-line .lt-words').forEach(el => {
      const t = el.textContent.trim(); if (!(t in window.__seen)) window.__seen[t] = now; });
    const el = document.querySelector('.lt-interim .lt-text'), text = el ? el.textContent.trim() : '';
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
        browser = launch_chromium(pw)
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


def captions(page):
    """The captions component's frame (the lines, the bars) once it has drawn (again after a
    Streamlit rerun that made it anew)."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + 90
    while True:
        frame = page.wait_for_selector(FRAME, state="attached", timeout=60_000).content_frame()
        try:
            if frame is not None:
                frame.wait_for_function("document.documentElement.dataset.version", timeout=5_000)
                return frame
        except PlaywrightError:
            if time.monotonic() > deadline:
                raise


def open_captions(board, link, viewport=(390, 844)):
    page = board["browser"].new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.goto(link)
    captions(page).evaluate(OBSERVE)
    return page


def shot(page, name: str) -> None:
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")


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
        captions(page).evaluate(OBSERVE)
        marker = captions(page).evaluate("window.__page")
        for name, audio in (("cap-first", "speech_b"), ("cap-second", "speech")):
            spoken, started = [], threading.Event()
            speaker = threading.Thread(target=speak, args=(server.grpc_url, audio_files[audio], name, spoken, started))
            speaker.start()
            assert started.wait(90)
            captions(page).wait_for_function(
                f"document.querySelector('.lt-status').textContent.includes({name!r})", timeout=30_000
            )
            # the dashboard lists the new session without a reload, marked live
            dash.wait_for_function(f"document.body.innerText.includes('LIVE now: ' + {name!r})", timeout=15_000)
            speaker.join(180)
            first_sentence = next(e.text for e in spoken if e.kind == EventKind.TRANSCRIPT)
            captions(page).wait_for_function(
                f"Object.keys(window.__seen).some(t => t.includes({first_sentence!r}))", timeout=30_000
            )
        frame = captions(page)
        assert frame.evaluate("window.__page") == marker  # the same page all along: no reload
        # transparent for OBS: nothing behind the text, no bars, only the newest few lines
        transparent = ("rgba(0, 0, 0, 0)", "transparent")
        assert page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor") in transparent
        assert frame.evaluate("getComputedStyle(document.documentElement).backgroundColor") in transparent
        assert frame.evaluate("getComputedStyle(document.body).backgroundColor") in transparent
        assert not frame.is_visible(".lt-bar") and not frame.is_visible(".lt-live")
        shown = frame.evaluate("[...document.querySelectorAll('.lt-line')].filter(e => e.offsetHeight > 0).length")
        assert 1 <= shown <= 4
    finally:
        shot(page, "captions-newest.png")
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
        captions(english).get_by_text("Waiting for “cap-live” to start").wait_for(timeout=30_000)
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
        ended = "document.querySelector('.lt-status').textContent.includes('ended')"
        captions(english).wait_for_function(ended, timeout=30_000)
        captions(german).wait_for_function(ended, timeout=30_000)
        seen_en, seen_de = captions(english).evaluate("window.__seen"), captions(german).evaluate("window.__seen")
        interims = captions(german).evaluate("window.__interims")
    finally:
        for p, name in ((english, "captions-en.png"), (german, "captions-de.png"), (tampered, "captions-bad.png")):
            shot(p, name)

    translations = [e for e in spoken if e.kind == EventKind.TRANSLATION and e.text]
    transcripts = [e for e in spoken if e.kind == EventKind.TRANSCRIPT]
    assert len(transcripts) >= 4 and translations
    # each language on its own page: the English translations, the German transcripts
    shown_en, shown_de = " ".join(seen_en), " ".join(seen_de)
    assert all(t.text in shown_de for t in transcripts), ([t.text for t in transcripts], list(seen_de))
    assert transcripts[-1].text not in shown_en
    # every translation was drawn, unless its translation in context came before it or within
    # about a refresh after it (then the page may go straight to that: it outranks it)
    translated_at = {e.segment_id: at for at, e in received if e.kind == EventKind.TRANSLATION and e.text}
    in_context = [(at, e) for at, e in received if e.kind == EventKind.ENHANCED and e.text and not e.error]

    def outranked_at_once(t) -> bool:
        at = translated_at.get(t.segment_id, 0.0)
        return any(t.segment_id in readable.covered_ids(e) and e_at - at < 1500 for e_at, e in in_context)

    missing = [t.text for t in translations if t.text not in shown_en and not outranked_at_once(t)]
    assert not missing, (missing, seen_en, [(at, e.kind.value, e.segment_id, e.text) for at, e in received])
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
    assert not [t for t in transcripts if t.text in body] and tampered.query_selector(FRAME) is None
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


# --- a place to read a meeting: a phone and a wall display -------------------------------------
# every piece of visible text on the page, as the boxes its lines of text take on screen (each
# clipped to what its scrolling ancestors and the window let show), and the pairs that overlap
LAYOUT = """() => {
  const clip = (el) => {
    let box = {l: 0, t: 0, r: innerWidth, b: innerHeight};
    for (let a = el; a && a !== document.documentElement; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.visibility === 'hidden' || cs.display === 'none') return null;
      if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
        const r = a.getBoundingClientRect();
        box = {l: Math.max(box.l, r.left), t: Math.max(box.t, r.top), r: Math.min(box.r, r.right), b: Math.min(box.b, r.bottom)};
      }
    }
    return box;
  };
  const boxes = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n = 0;
  for (let node; (node = walker.nextNode()); n++) {
    if (!node.textContent.trim()) continue;
    const box = clip(node.parentElement);
    if (!box) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      const c = {l: Math.max(r.left, box.l), t: Math.max(r.top, box.t), r: Math.min(r.right, box.r), b: Math.min(r.bottom, box.b)};
      if (c.r - c.l > 1 && c.b - c.t > 1) boxes.push({...c, node: n, text: node.textContent.slice(0, 30)});
    }
  }
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.node !== b.node && Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1)
        overlaps.push([a.text, b.text]);
    }
  const s = document.querySelector('.lt-scroller');
  return {boxes: boxes.length, overlaps: overlaps.slice(0, 5), wide: s.scrollWidth > s.clientWidth + 1};
}"""
# whether a line is in full view: inside the scroller and the window, and on top at its corners
IN_VIEW = """(line) => {
  const s = document.querySelector('.lt-scroller').getBoundingClientRect(), r = line.getBoundingClientRect();
  const inside = r.top >= Math.max(s.top, 0) - 0.5 && r.bottom <= Math.min(s.bottom, innerHeight) + 0.5
    && r.left >= 0 && r.right <= innerWidth + 0.5;
  const points = [[r.left + 3, r.top + 3], [r.right - 3, r.top + 3], [r.left + 3, r.bottom - 3], [r.right - 3, r.bottom - 3],
    [(r.left + r.right) / 2, (r.top + r.bottom) / 2]];
  const onTop = points.every(([x, y]) => { const e = document.elementFromPoint(x, y); return e && line.contains(e); });
  return inside && onTop;
}"""
SCROLL = (
    "() => { const s = document.querySelector('.lt-scroller'); return [s.scrollTop, s.scrollHeight, s.clientHeight]; }"
)
AT_END = "() => { const s = document.querySelector('.lt-scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight <= 4; }"
SCALE = "() => getComputedStyle(document.documentElement).getPropertyValue('--scale').trim()"
LINES = "() => [...document.querySelectorAll('.lt-line .lt-words')].map(e => e.textContent)"


def check_layout(page, frame, what: str) -> None:
    """Nothing overlaps, nothing runs off to the side, the first line (scrolled to the top)
    and the newest (back at the end) in full view."""
    layout = frame.evaluate(LAYOUT)
    assert layout["boxes"] > 3 and not layout["overlaps"] and not layout["wide"], (what, layout)
    frame.evaluate("document.querySelector('.lt-scroller').scrollTop = 0")
    page.wait_for_timeout(300)
    assert frame.locator(".lt-line").first.evaluate(IN_VIEW), f"{what}: the first line is not in full view"
    assert not frame.evaluate(LAYOUT)["overlaps"]
    frame.evaluate("document.querySelector('.lt-scroller').scrollTop = 1e9")
    page.wait_for_timeout(300)
    assert frame.locator(".lt-line").last.evaluate(IN_VIEW), f"{what}: the newest line is not in full view"


def read_back_while_lines_come(page, frame, what: str) -> None:
    """The text made large enough to scroll, the reader scrolls to the top: new lines come,
    the view holds and offers the way back; tapped, it follows the newest line again."""
    frame.wait_for_function("document.querySelectorAll('.lt-line').length >= 2", timeout=90_000)
    for _ in range(12):  # larger until there is something to scroll back to
        top, height, client = frame.evaluate(SCROLL)
        if height > client * 1.3 or frame.locator(".lt-larger").is_disabled():
            break
        frame.locator(".lt-larger").click()
        page.wait_for_timeout(200)
    assert frame.evaluate(AT_END), f"{what}: not following the newest line"
    box = page.locator(FRAME).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(10):
        page.mouse.wheel(0, -3000)  # the reader scrolls back with the wheel
        page.wait_for_timeout(150)
    page.wait_for_timeout(500)
    top, height, client = frame.evaluate(SCROLL)
    assert top == 0 and height > client, (what, top, height, client)
    assert frame.locator(".lt-live").is_visible()
    before = frame.evaluate(LINES)
    frame.wait_for_function(f"JSON.stringify(({LINES})()) !== {json.dumps(json.dumps(before))}", timeout=90_000)
    page.wait_for_timeout(800)  # (a fragment rerun or two later)
    assert frame.evaluate(SCROLL)[0] == 0, f"{what}: the view moved while the reader read back"
    assert frame.locator(".lt-live").is_visible()
    shot(page, f"captions-{what}-reading-back.png")
    frame.locator(".lt-live").click()
    frame.wait_for_function(f"({AT_END})()", timeout=5_000)
    assert not frame.locator(".lt-live").is_visible()


def test_the_captions_page_is_a_place_to_read_a_meeting(server, audio_files, board):
    name, tmp = "cap-read", board["tmp"]
    meeting = tmp / "meeting.wav"  # ten sentences, about a minute
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(audio_files["speech"]), "-i", str(audio_files["speech_b"])]
        + ["-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1", "-ar", "16000", "-ac", "1", str(meeting)],
        check=True,
        timeout=60,
    )
    phone = open_captions(board, share_link(board, name, "--lang", "en"), viewport=(390, 844))
    wall = open_captions(board, share_link(board, name, "--lang", "de"), viewport=(1920, 1080))
    spoken, started = [], threading.Event()
    try:
        captions(phone).get_by_text(f"Waiting for “{name}” to start").wait_for(timeout=30_000)
        # the phone reads English with the German words above each line: one tap
        captions(phone).locator(".lt-both").click()
        assert captions(phone).locator(".lt-both").get_attribute("aria-pressed") == "true"
        marker = captions(phone).evaluate("window.__page")
        speaker = threading.Thread(target=speak, args=(server.grpc_url, meeting, name, spoken, started))
        speaker.start()
        assert started.wait(90)
        read_back_while_lines_come(wall, captions(wall), "wall")
        read_back_while_lines_come(phone, captions(phone), "phone")
        speaker.join(240)
        for page in (phone, wall):
            captions(page).wait_for_function(
                "document.querySelector('.lt-status').textContent.includes('ended')", timeout=60_000
            )
            assert captions(page).evaluate(AT_END)  # following again: the newest line in view
        assert captions(phone).evaluate("window.__page") == marker  # the same page from waiting to ended
        # the text size and the bilingual view are remembered on the device
        scale = captions(phone).evaluate(SCALE)
        assert float(scale) > 1
        phone.reload()
        frame = captions(phone)
        assert frame.evaluate(SCALE) == scale and frame.locator(".lt-both").get_attribute("aria-pressed") == "true"
        sources = frame.evaluate("[...document.querySelectorAll('.lt-line .lt-source')].map(e => e.textContent)")
        transcripts = [e.text for e in spoken if e.kind == EventKind.TRANSCRIPT]
        assert sources and any(t in " ".join(sources) for t in transcripts) and frame.is_visible(".lt-line .lt-source")
        # at the usual size again (one tap at a time), on both screens
        for page, what in ((phone, "phone"), (wall, "wall")):
            frame = captions(page)
            while float(frame.evaluate(SCALE)) > 1:
                frame.locator(".lt-smaller").click()
            assert frame.evaluate(SCALE) == "1"
            check_layout(page, frame, what)
            shot(page, f"captions-{what}.png")
        lines = captions(wall).evaluate(LINES)
        assert all(any(t in line for line in lines) for t in transcripts[-3:]), (lines, transcripts)
    finally:
        shot(phone, "captions-phone-end.png")
        shot(wall, "captions-wall-end.png")
        phone.close()
        wall.close()


MARKUP = "<script>window.__pwned = 1</script><b>bold</b> <img src=x onerror='window.__pwned = 2'>"


def store_hostile_captions(server, name) -> None:
    """A stored session with markup in a speaker's words and a 10,000-character line."""
    from livetranslate.protocol import Event
    from livetranslate.store import SessionStore

    store = SessionStore(server.options.data_dir, fsync=False)
    store.open(name, "de", "en")
    long_de, long_en = ("Wort " * 2000).strip(), ("word " * 2000).strip()
    for event in (
        Event(EventKind.TRANSCRIPT, "Er sagte " + MARKUP, 0, 0.0, 2.0, "de"),
        Event(EventKind.TRANSLATION, "He said " + MARKUP, 0, 0.0, 2.0, "en"),
        Event(EventKind.TRANSCRIPT, long_de, 1, 2.0, 9.0, "de"),
        Event(EventKind.TRANSLATION, long_en, 1, 2.0, 9.0, "en"),
        Event(EventKind.TRANSCRIPT, "Danke.", 2, 9.0, 10.0, "de"),
        Event(EventKind.TRANSLATION, "Thanks.", 2, 9.0, 10.0, "en"),
        Event(EventKind.ENHANCED, "Thank you.", 2, 9.0, 10.0, "en", first_segment_id=2),
    ):
        store.append(name, event)
    store.close(name)


def test_hostile_text_and_settings_out_of_range_stay_harmless(server, board):
    name = "cap-hostile"
    store_hostile_captions(server, name)
    link = share_link(board, name, "--lang", "en")
    page = board["browser"].new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(link + "&size=9999")
        frame = captions(page)
        frame.wait_for_function("document.querySelectorAll('.lt-line').length === 3", timeout=60_000)
        lines = frame.evaluate(LINES)
        assert lines[0] == "He said " + MARKUP and len(lines[1]) > 9000 and lines[2] == "Thank you."
        assert frame.evaluate("document.querySelectorAll('.lt-lines script, .lt-lines b, .lt-lines img').length") == 0
        assert frame.evaluate("window.__pwned") is None and page.evaluate("window.__pwned") is None
        # the line improved later: a quiet mark, explained in its title and in the legend
        mark = frame.locator(".lt-line").last.locator(".lt-mark")
        assert mark.get_attribute("title").startswith("improved: translated again")
        assert "improved" in frame.locator(".lt-legend").inner_text()
        frame.locator(".lt-legend").click()
        assert "translated again with the sentences around it" in frame.locator(".lt-explain").inner_text()
        # the link's size out of range: the largest, and said so
        assert frame.evaluate(SCALE) == "3" and "outside 50–300 %: 300 % is used" in frame.inner_text(".lt-note")
        layout = frame.evaluate(LAYOUT)
        assert not layout["overlaps"] and not layout["wide"], layout
        shot(page, "captions-hostile.png")
        # a size kept on the device out of range, or not a number: brought in, or forgotten, and said so
        frame.evaluate("localStorage.setItem('livetranslate.captions.size', '77777')")
        page.goto(link)
        frame = captions(page)
        assert frame.evaluate(SCALE) == "3" and "kept on this device (77777 %)" in frame.inner_text(".lt-note")
        assert frame.evaluate("localStorage.getItem('livetranslate.captions.size')") == "300"
        frame.evaluate("localStorage.setItem('livetranslate.captions.size', '<b>huge</b>')")
        page.goto(link)
        frame = captions(page)
        assert frame.evaluate(SCALE) == "1" and "(“<b>huge</b>”) is not a number" in frame.inner_text(".lt-note")
        assert frame.evaluate("document.querySelectorAll('.lt-note b').length") == 0
        # a session name with control characters: a clear answer, no captions
        page.goto(f"{board['url']}/?view=captions&session=a%0Ab%1B%5B2J&lang=en&token=0")
        page.get_by_text("This captions link names no session the server could have").wait_for(timeout=60_000)
        assert page.query_selector(FRAME) is None
    finally:
        shot(page, "captions-hostile-end.png")
        page.close()


def test_captions_say_who_speaks_and_follow_a_name_given_live(server, board):
    """A session with speaker labels: each new speaker's first line says who (the Names
    button hides it); a line moved to another speaker follows; `speakers rename` while the
    page is open shows the name at once, as text (markup stays text)."""
    from livetranslate.protocol import Event
    from livetranslate.store import SessionStore

    name = "cap-speakers"
    store = SessionStore(server.options.data_dir, fsync=False)
    store.open(name, "de", "en")
    said = [("Guten Morgen.", "Good morning.", "S1"), ("Wie geht es?", "How are you?", "S1")]
    said += [("Gut, danke.", "Fine, thanks.", "S2"), ("Schön.", "Nice.", "S3"), ("Also los.", "Let's go.", "S1")]
    for i, (de, en, who) in enumerate(said):
        store.append(name, Event(EventKind.TRANSCRIPT, de, i, 2.0 * i, 2.0 * i + 1.5, "de", speaker=who))
        store.append(name, Event(EventKind.TRANSLATION, en, i, 2.0 * i, 2.0 * i + 1.5, "en", speaker=who))
    store.append(name, Event(EventKind.SPEAKER_UPDATE, segment_id=3, end_s=9.0, speaker="S2"))  # S3 was S2
    store.close(name)
    page = board["browser"].new_page(viewport={"width": 390, "height": 844})
    shown = """() => [...document.querySelectorAll('.lt-line')].map(e =>
        getComputedStyle(e.querySelector('.lt-who')).display === 'none' ? '' : e.querySelector('.lt-who').textContent)"""
    try:
        page.goto(share_link(board, name, "--lang", "en"))
        frame = captions(page)
        frame.wait_for_function("document.querySelectorAll('.lt-line').length === 5", timeout=60_000)
        assert frame.evaluate(shown) == ["S1", "", "S2", "", "S1"]  # the moved line is S2's: no new name
        names = frame.locator(".lt-names")
        assert names.is_visible() and names.get_attribute("aria-pressed") == "true"
        names.click()
        assert frame.evaluate(shown) == [""] * 5
        names.click()
        out = subprocess.run(
            CLI + ["speakers", "rename", name, "s1", "Anna <b>Lena</b>", "--url", server.grpc_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "S1 is Anna <b>Lena</b>"
        frame.wait_for_function("document.querySelector('.lt-who').textContent.startsWith('Anna')", timeout=30_000)
        assert frame.evaluate(shown) == ["Anna <b>Lena</b>", "", "S2", "", "Anna <b>Lena</b>"]
        assert frame.evaluate("document.querySelectorAll('.lt-lines b').length") == 0
        layout = frame.evaluate(LAYOUT)
        assert not layout["overlaps"] and not layout["wide"], layout
        shot(page, "captions-speakers.png")
        # the name is kept: an export says it, in every format
        export = subprocess.run(
            CLI + ["export", name, "--format", "vtt", "--lang", "target", "--url", server.grpc_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "<v Anna &lt;b&gt;Lena&lt;/b&gt;>Good morning." in export and "<v S2>Nice." in export
    finally:
        page.close()
