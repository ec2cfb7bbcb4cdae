"""`/speak` without a server: the speaker token is a kind of its own, the socket's messages
(start, audio, stop) are checked and a message the gateway cannot use closes the socket with
a reason that says why, the page is served with its headers and sets text only as text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from livetranslate import share
from livetranslate.gateway import GatewayConfig, create_app
from livetranslate.gateway import speaker as S
from livetranslate.protocol import Event, EventKind

SECRET = "speak-test-secret-0123456789"
SPEAK = Path(__file__).resolve().parents[1] / "livetranslate" / "gateway" / "speak"


# --- tokens --------------------------------------------------------------------------------


def test_a_speaker_token_is_its_own_kind_for_its_own_session():
    speaker = share.speaker_token("standup", SECRET)
    reader = share.share_token("standup", SECRET)
    assert speaker != reader and len(speaker) == 32
    assert share.speaker_token_valid("standup", speaker, SECRET)
    assert share.speaker_token_valid("standup", speaker.upper() + "\n", SECRET + "\n")
    assert not share.speaker_token_valid("standup", reader, SECRET)  # a reader's link never speaks
    assert not share.token_valid("standup", speaker, SECRET)  # a speaker's token is no reader's
    assert not share.speaker_token_valid("retro", speaker, SECRET)
    assert not share.speaker_token_valid("standup", speaker, "another-secret")
    assert not share.speaker_token_valid("standup", None, SECRET)
    assert not share.speaker_token_valid("standup", speaker, None)


def test_a_speaker_link_opens_the_gateways_page():
    link = share.speaker_link("https://gw.example:8080/", "stand up", "ab" * 16, "fr")
    assert link == f"https://gw.example:8080/speak?session=stand%20up&token={'ab' * 16}&target=fr"


def start(**fields) -> str:
    return json.dumps({"type": "start", **fields})


def test_who_may_speak():
    token = share.speaker_token("standup", SECRET)
    # a key (or none) is passed on; the server decides, as for the API
    assert S.authorize(S.parse_start(start(key="k")), SECRET, "gw", False)[1] == "k"
    session, key = S.authorize(S.parse_start(start()), None, "gw", False)
    assert session.startswith("speak-") and key is None
    # a speaker token: its one session, with the gateway's key, where speaker links are taken
    assert S.authorize(S.parse_start(start(session="standup", token=token)), SECRET, "gw", True) == ("standup", "gw")
    for args, code in [
        ((start(session="standup", token=token), SECRET, "gw", False), S.FORBIDDEN),
        ((start(session="standup", token=token), None, "gw", True), S.FORBIDDEN),
        ((start(session="retro", token=token), SECRET, "gw", True), S.UNAUTHORIZED),
        ((start(token=token), SECRET, "gw", True), S.UNAUTHORIZED),
        ((start(session="standup", token=share.share_token("standup", SECRET)), SECRET, "gw", True), S.UNAUTHORIZED),
        ((start(key="bad\u00e9key"), SECRET, "gw", True), S.UNAUTHORIZED),
    ]:
        with pytest.raises(S.SpeakError) as refused:
            S.authorize(S.parse_start(args[0]), *args[1:])
        assert refused.value.code == code


# --- messages ------------------------------------------------------------------------------


def test_the_start_message_is_checked():
    made = S.parse_start(start(session="s", language="German", target="fr", time_base_s=12.5, partials=False))
    assert (made.session, made.language, made.target, made.time_base_s, made.partials) == ("s", "de", "fr", 12.5, False)
    assert S.parse_start(start(language="auto")).language == "auto"
    for bad in [
        b"RIFF....",
        "not json",
        json.dumps([1]),
        json.dumps({"type": "stop"}),
        start(language="klingon"),
        start(target="auto"),
        start(time_base_s=-1),
        start(time_base_s=float("inf")),
        start(time_base_s="1"),
        start(translate="yes"),
        start(session="a\nb"),
        start(session="x" * 201),
    ]:
        with pytest.raises(S.SpeakError) as refused:
            S.parse_start(bad)
        assert refused.value.code == S.UNSUPPORTED, bad
    with pytest.raises(S.SpeakError) as big:
        S.parse_start(start(session="x" * S.MAX_TEXT_BYTES))
    assert big.value.code == S.TOO_BIG


def test_audio_frames_are_16_bit_pcm_within_the_limit():
    pcm = np.arange(-800, 800, dtype=np.int16)
    assert np.array_equal(S.check_frame(pcm.astype("<i2").tobytes()), pcm)
    assert len(S.check_frame(b"\0" * S.MAX_FRAME_BYTES)) == S.RATE_HZ
    cases = [
        (b"\0" * (S.MAX_FRAME_BYTES + 2), S.TOO_BIG, "at most 32000"),
        (b"\0\0\0", S.UNSUPPORTED, "odd"),
        (b"RIFF\0\0\0\0WAVEfmt ", S.UNSUPPORTED, "WAV"),
        (b"\x1aE\xdf\xa3\0\0", S.UNSUPPORTED, "WebM"),
        (b"OggS\0\0", S.UNSUPPORTED, "Ogg"),
    ]
    for data, code, said in cases:
        with pytest.raises(S.SpeakError) as refused:
            S.check_frame(data)
        assert refused.value.code == code and said in refused.value.reason
    assert S.parse_control(json.dumps({"type": "stop"})) == "stop"
    with pytest.raises(S.SpeakError):
        S.parse_control(start())


def test_a_close_reason_fits_a_close_frame():
    assert S.close_reason("short\nreason") == "short reason"
    long = S.close_reason("ü" * 200)
    assert len(long.encode("utf-8")) <= S.MAX_REASON_BYTES and long.endswith("...")


def test_events_and_the_readers_link():
    event = Event(EventKind.TRANSLATION, "Hello", 3, 1.23456, 2.5, "en", error="", note="small model")
    assert S.event_message(event) == {
        "type": "event",
        "kind": "translation",
        "text": "Hello",
        "segment_id": 3,
        "first_segment_id": -1,
        "start_s": 1.235,
        "end_s": 2.5,
        "language": "en",
        "note": "small model",
    }
    link, note = S.reader_link(None, "s", "en", SECRET)
    assert link is None and "--dashboard-url" in note
    link, note = S.reader_link("http://board:8501", "s", "fr", SECRET)
    assert link == share.share_link("http://board:8501", "s", "fr", share.share_token("s", SECRET)) and not note
    link, note = S.reader_link("http://board:8501", "s", "fr", None)
    assert "token" not in (link or "") and "no token" in note


def test_only_the_gateways_own_pages_may_speak():
    assert S.same_origin(None, "127.0.0.1:8080")
    assert S.same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not S.same_origin("https://evil.example", "127.0.0.1:8080")
    assert not S.same_origin("http://127.0.0.1:9999", "127.0.0.1:8080")


# --- the socket, without a server ------------------------------------------------------------


@pytest.fixture
def app():
    url = f"127.0.0.1:{free_port()}"  # nobody listens there
    config = GatewayConfig(url=url, speaker_links=True, speaker_secret=SECRET, gateway_key="gw")
    with TestClient(create_app(config)) as client:
        yield client


def closed_with(app, messages, **headers):
    with app.websocket_connect("/speak/socket", headers=dict(headers)) as ws:
        for message in messages:
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)
        seen = []
        with pytest.raises(WebSocketDisconnect) as gone:
            while True:
                seen.append(ws.receive_json())
    return gone.value.code, gone.value.reason, seen


def test_the_socket_refuses_what_it_cannot_use(app):
    assert closed_with(app, [b"\0\0"])[:2] == (
        S.UNSUPPORTED,
        "the first message must be the JSON start message, not audio",
    )
    code, reason, _ = closed_with(app, [start(session="s", token="0" * 32)])
    assert code == S.UNAUTHORIZED and "not valid" in reason
    with pytest.raises(WebSocketDisconnect) as other_site:
        with app.websocket_connect("/speak/socket", headers={"origin": "https://evil.example"}) as ws:
            ws.receive_text()
    assert other_site.value.code == S.POLICY


def test_a_server_that_does_not_answer_ends_the_socket_with_why(app):
    code, reason, seen = closed_with(app, [start(key="k")])
    assert code == S.FAILED and reason
    assert seen[0]["type"] == "ready" and seen[0]["share_link"] is None and "--dashboard-url" in seen[0]["note"]
    assert seen[-1]["type"] == "end" and seen[-1]["error"]


def test_the_page_is_served_and_sets_text_only_as_text(app):
    page = app.get("/speak")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    for name in ("speak.js", "worklet.js", "speak.css"):
        assert app.get(f"/speak/{name}").status_code == 200
    assert app.get("/speak/languages.json").json()["de"] == "German"
    scripts = "\n".join((SPEAK / name).read_text() for name in ("speak.js", "worklet.js"))
    for never in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert never not in scripts


def test_share_prints_a_speaker_link(tmp_path):
    from click.testing import CliRunner

    from livetranslate.cli import main

    env = {
        share.COOKIE_KEY_ENV: SECRET,
        share.KEY_FILE_ENV: str(tmp_path / "key"),
        share.GATEWAY_URL_ENV: "https://gw.example",
        "LIVETRANSLATE_CONFIG": str(tmp_path / "none.toml"),
    }
    made = CliRunner().invoke(main, ["share", "standup", "--ahead", "--speaker", "--lang", "French"], env=env)
    assert made.exit_code == 0, made.output
    token = share.speaker_token("standup", SECRET)
    assert made.output.strip() == f"https://gw.example/speak?session=standup&token={token}&target=fr"
    env[share.COOKIE_KEY_ENV] = ""
    refused = CliRunner().invoke(main, ["share", "standup", "--ahead", "--speaker"], env=env)
    assert refused.exit_code != 0 and "secret" in refused.output
