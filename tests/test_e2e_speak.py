"""Speaking from a browser: a real server, the gateway in this process and headless Chromium
whose fake microphone plays the German test recording into /speak. The words come back on
the page with their English, the session is stored, and a connection cut in the middle
(the network offline, the socket gone) is taken up again: the session goes on with no
segment lost or given twice."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest
import soundfile as sf
from conftest import ARTIFACTS, launch_chromium
from test_e2e_gateway import GERMAN, PROJECT, SCHEDULE, gateway_at

from livetranslate.audio import read_audio
from livetranslate.client import PipelineClient
from livetranslate.protocol import EventKind

pytestmark = pytest.mark.slow
FAKE_RATE = 48_000  # Chromium's fake capture reads 16-bit PCM WAV; its own rate, to be safe


def fake_microphone(source, folder, silence_s: float = 4.0):
    """SOURCE as the 16-bit mono WAV Chromium's fake capture plays, with silence after it
    (the last utterance ends), at FAKE_RATE."""
    pcm, rate = read_audio(source)
    x = pcm.astype(np.float32)
    t = np.arange(int(len(x) * FAKE_RATE / rate)) * rate / FAKE_RATE
    played = np.concatenate([np.interp(t, np.arange(len(x)), x), np.zeros(int(silence_s * FAKE_RATE))])
    path = folder / "microphone.wav"
    sf.write(path, played.astype(np.int16), FAKE_RATE, subtype="PCM_16")
    return path, len(played) / FAKE_RATE


def chromium(pw, wav):
    """Chromium whose fake microphone plays WAV once."""
    return launch_chromium(
        pw,
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    )


def wait_for(page, script: str, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s; the page says {page.inner_text('body')[-1500:]!r}")


def test_a_browser_speaks_and_survives_a_dropped_connection(server, audio_files, tmp_path):
    from playwright.sync_api import sync_playwright

    wav, seconds = fake_microphone(audio_files["speech"], tmp_path)
    name = f"speak-test-{uuid.uuid4().hex[:6]}"
    with gateway_at(server.grpc_url) as base, sync_playwright() as pw:
        root = base.removesuffix("/v1")
        browser = chromium(pw, wav)
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{root}/speak#key=not-checked-by-this-server")
            assert "#" not in page.url  # the key left the address bar
            page.fill("#session", name)
            page.wait_for_function("document.querySelectorAll('#target option').length > 10")
            page.click("#start")
            wait_for(page, "window.__speak.finals.length >= 1", 60, "a first final line")
            # the network goes: offline, the socket cut; audio waits in the page meanwhile
            context.set_offline(True)
            page.evaluate("window.__speak.drop()")
            # the socket is gone (watched as it happens: Chromium's offline mode may let a
            # reconnect to loopback through within the 0.5 s backoff, so a later look can miss it)
            page.wait_for_function("() => !window.__speak.ready", timeout=10_000)
            time.sleep(3)  # audio waits in the page meanwhile
            context.set_offline(False)
            wait_for(page, "window.__speak.ready", 30, "the page reconnected")
            # the whole recording, and its last line
            played = f"window.__speak.firstAudioAt && Date.now() - window.__speak.firstAudioAt > {1000 * seconds:.0f}"
            wait_for(page, played, 90, "the recording played")
            page.click("#start")  # Stop: the open utterance is finished, the session ends
            wait_for(page, "document.querySelector('#state').textContent === 'ended'", 90, "the session ended")
            page.screenshot(path=str(ARTIFACTS / "speak.png"), full_page=True)
            print("screenshot:", ARTIFACTS / "speak.png")
            transcript = " ".join(page.locator(".line .src").all_inner_texts())
            english = " ".join(page.locator(".line .tr").all_inner_texts()).lower()
            shown = page.evaluate("[...document.querySelectorAll('.line')].map(l => Number(l.dataset.segment))")
            link = page.inner_text("#share")
            lines_translated = page.evaluate(
                "[...document.querySelectorAll('.line .tr')].filter(t => t.textContent).length"
            )
            interim = page.inner_text("#interim").strip()
        finally:
            context.close()
            browser.close()

    # the page is gone: so are its streams' threads (the gRPC streams ended)
    deadline = time.monotonic() + 30
    while any(t.name == f"speak-{name}" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(t.name == f"speak-{name}" for t in threading.enumerate())
    assert any(word in transcript for word in GERMAN), transcript
    assert PROJECT in english or any(word in english for word in SCHEDULE), english
    assert "--dashboard-url" in link  # no readers' link without a dashboard, and the page says so
    with PipelineClient(server.grpc_url) as client:
        stored = client.sessions("get", name)["events"]
    ids = [e.segment_id for e in stored if e.kind == EventKind.TRANSCRIPT]
    # one session across the two connections: numbered on, none lost, none twice
    assert len(ids) >= 4 and ids == list(range(len(ids))), ids
    assert sorted(shown) == ids  # every line reached the page, the one the cut interrupted too
    translated = {e.segment_id for e in stored if e.kind == EventKind.TRANSLATION and e.language == "en"}
    assert translated == set(ids)
    assert lines_translated == len(ids) and interim == ""  # each line with its English; no interim left over
