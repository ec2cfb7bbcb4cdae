"""The OpenAI-compatible gateway's own logic, without a server: answers in every format from
events, the error shape and what the server's refusals become, the fields a request may
carry, and the upload read within its limit (the app called as ASGI, no network)."""

from __future__ import annotations

import asyncio
import html
import io
import json

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt
from click.testing import CliRunner

from livetranslate import cli
from livetranslate.client.connection import ClientError, Unreachable
from livetranslate.gateway import GatewayConfig, create_app, formats
from livetranslate.gateway.errors import ApiError, from_client_error, from_end, from_message
from livetranslate.gateway.fields import speech_request
from livetranslate.gateway.upload import DRAIN_BYTES, Form
from livetranslate.protocol import RETRY_ELSEWHERE, Event, EventKind
from livetranslate.words import Word

T, TR, EN, END = EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.ENHANCED, EventKind.END

EVENTS = [
    Event(T, "Guten Morgen.", 0, 0.5, 2.0, "de", words=(Word("Guten", 0.6, 1.0, 0.9), Word("Morgen.", 1.0, 1.8, 0.8))),
    Event(TR, "Good morning.", 0, 0.5, 2.0, "en"),
    Event(T, "Heute sprechen wir über das Projekt.", 1, 2.5, 5.0, "de"),
    Event(TR, "Today we talk about the project.", 1, 2.5, 5.0, "en"),
    Event(T, "Und den Zeitplan.", 2, 5.2, 6.5, "de"),
    Event(TR, "And the schedule.", 2, 5.2, 6.5, "en"),
    Event(EN, "Today we discuss the project and its schedule.", 2, 2.5, 6.5, "en", first_segment_id=1),
    Event(T, "Danke.", 3, 7.0, 8.0, "de"),
    Event(TR, "", 3, 7.0, 8.0, "en", error="llm timed out"),
    Event(END),
]


# --- formats ---------------------------------------------------------------------------------
def test_a_transcription_is_the_transcripts_in_order():
    made = formats.result(EVENTS, "transcribe", "auto", 8.4)
    assert made.text == "Guten Morgen. Heute sprechen wir über das Projekt. Und den Zeitplan. Danke."
    assert made.language == "de" and len(made.rows) == 4 and made.failed == 0


def test_a_translation_is_each_sentences_best_text():
    made = formats.result(EVENTS, "translate", "en", 8.4)
    # the in-context translation covers sentences 1 and 2; sentence 3's translation failed
    assert made.text == "Good morning. Today we discuss the project and its schedule."
    assert made.rows[1] == (2.5, 6.5, "Today we discuss the project and its schedule.")
    assert made.failed == 1


def test_every_response_format_parses_as_its_kind():
    made = formats.result(EVENTS, "transcribe", "de", 8.4)
    body, media = formats.render(made, "json")
    assert json.loads(body) == {"text": made.text, "usage": {"type": "duration", "seconds": 9}}
    assert media == "application/json"
    body, _ = formats.render(made, "text")
    assert body == made.text + "\n"
    body, _ = formats.render(made, "srt")
    subs = list(srt.parse(body))
    assert " ".join(s.content.replace("\n", " ") for s in subs) == made.text
    assert subs[0].start.total_seconds() == 0.6  # where its first word was said
    body, _ = formats.render(made, "vtt")
    captions = webvtt.from_buffer(io.StringIO(body))
    assert " ".join(html.unescape(c.text).replace("\n", " ") for c in captions) == made.text
    verbose = json.loads(formats.render(made, "verbose_json")[0])
    assert verbose["task"] == "transcribe" and verbose["language"] == "german" and verbose["duration"] == 8.4
    assert [s["text"] for s in verbose["segments"]] == [r[2] for r in made.rows]
    first = verbose["segments"][0]
    assert first["id"] == 0 and first["start"] == 0.5 and first["end"] == 2.0 and first["seek"] == 50
    # what the server does not say is null, not made up; words only when asked
    assert first["avg_logprob"] is None and first["no_speech_prob"] is None and "words" not in verbose
    worded = json.loads(formats.render(made, "verbose_json", with_words=True)[0])
    # the words the server timed, at the top level as OpenAI has them; the rows without any have none
    assert worded["words"] == [
        {"word": "Guten", "start": 0.6, "end": 1.0},
        {"word": "Morgen.", "start": 1.0, "end": 1.8},
    ]
    translated = formats.result(EVENTS, "translate", "en", 8.4)
    assert "words" not in json.loads(formats.render(translated, "verbose_json", with_words=True)[0])
    with pytest.raises(ValueError):
        formats.render(made, "diarized_json")


def test_streamed_events_add_text_and_end_with_the_whole():
    deltas = [formats.delta(e, "transcribe", "de") for e in EVENTS]
    assert [d for d in deltas if d] == [
        "Guten Morgen.",
        "Heute sprechen wir über das Projekt.",
        "Und den Zeitplan.",
        "Danke.",
    ]
    assert [formats.delta(e, "translate", "en") for e in EVENTS if formats.delta(e, "translate", "en")][0] == (
        "Good morning."
    )
    assert formats.sse_delta("b", first=False) == b'data: {"type": "transcript.text.delta", "delta": " b"}\n\n'
    done = formats.sse_done(formats.result(EVENTS, "transcribe", "de", 8.4))
    assert json.loads(done.decode()[len("data: ") :])["type"] == "transcript.text.done"


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "message,status,code",
    [
        ("this server needs a client key: send yours in the x-livetranslate-key header", 401, "invalid_api_key"),
        ("the server refused the request: it needs an API key, and the one given is missing or wrong", 401, None),
        ("server full: 8 speaker streams are live, the most this server takes; try again later", 429, None),
        ("client 'alice' already has 1 speaker stream(s) live, the most its key allows", 429, None),
        ("client 'bob' may not open speaker streams: its key allows none", 403, "permission_denied"),
        ("the server is shutting down (or still starting)", 503, "server_unavailable"),
        ("disk full: the session could not be stored", 502, "upstream_error"),
    ],
)
def test_the_servers_refusals_become_their_http_status(message, status, code):
    error = from_message(message)
    assert error.status == status and (code is None or error.code == code)
    body = error.body()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    if status in (429, 503):
        assert int(error.headers()["Retry-After"]) > 0
    else:
        assert error.headers() == {}


def test_an_end_event_carries_the_refusal_or_nothing():
    assert from_end(Event(END)) is None
    full = from_end(Event(END, RETRY_ELSEWHERE, error="server full: 8 speaker streams are live"))
    assert full is not None and full.status == 429
    elsewhere = from_end(Event(END, RETRY_ELSEWHERE, error="session 'x' is live on another server"))
    assert elsewhere is not None and elsewhere.status == 503
    assert from_client_error(Unreachable("nothing answers")).status == 503
    assert from_client_error(ClientError("no answer from the server for 120 s")).status == 502


# --- fields ----------------------------------------------------------------------------------
def form(**fields) -> Form:
    made = Form(file=None, size=10)
    from pathlib import Path

    made.file = Path("/nonexistent/upload")
    for name, value in fields.items():
        made.fields[name.replace("__", "[]")] = value if isinstance(value, list) else [value]
    return made


def test_a_request_defaults_to_json_detected_language_and_a_new_session():
    asked = speech_request(form(model="whisper-1"), "transcribe")
    assert asked.response_format == "json" and asked.language == "auto" and not asked.stream
    assert asked.session.startswith("gateway-") and asked.target == ""
    translated = speech_request(form(language="German", target_language="fr", stream="true"), "translate")
    assert translated.language == "de" and translated.target == "fr" and translated.stream
    assert speech_request(form(), "translate").target == "en"  # as OpenAI defines translations
    worded = speech_request(
        form(response_format="verbose_json", timestamp_granularities__=["word", "segment"]), "transcribe"
    )
    assert worded.words


@pytest.mark.parametrize(
    "fields,param",
    [
        ({"language": "klingon"}, "language"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"target_language": "fr"}, "target_language"),  # on a transcription
        ({"temperature": "2"}, "temperature"),
        ({"stream": "maybe"}, "stream"),
        ({"store": "perhaps"}, "store"),
        ({"session": "x" * 201}, "session"),
        ({"timestamp_granularities__": ["char"]}, "timestamp_granularities"),
        ({"glossary": "Zorvexa =\n"}, "glossary"),
    ],
)
def test_a_field_that_cannot_be_used_is_a_400_that_names_it(fields, param):
    with pytest.raises(ApiError) as caught:
        speech_request(form(**fields), "transcribe")
    assert caught.value.status == 400 and caught.value.param == param


def test_no_file_or_an_empty_one_is_a_400():
    with pytest.raises(ApiError, match="no audio"):
        speech_request(Form(), "transcribe")
    empty = form()
    empty.size = 0
    with pytest.raises(ApiError, match="empty"):
        speech_request(empty, "transcribe")


# --- the app, called as ASGI -----------------------------------------------------------------
def multipart(fields: dict, file: bytes | None = None, filename: str = "a.wav") -> tuple[bytes, str]:
    boundary = "----livetranslate-test"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if file is not None:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Call:
    """One request to the app: `chunks` are the body as it arrives (None: the client goes
    away there; a float: a pause of that many seconds)."""

    def __init__(self, app, path="/v1/audio/transcriptions", method="POST", headers=(), chunks=()):
        self.app, self.path, self.method, self.headers, self.chunks = app, path, method, list(headers), list(chunks)
        self.pulled = 0  # body bytes the app read
        self.status, self.response_headers, self.body = 0, {}, b""

    async def _receive(self):
        while self.chunks:
            chunk = self.chunks.pop(0)
            if chunk is None:
                return {"type": "http.disconnect"}
            if isinstance(chunk, float):
                await asyncio.sleep(chunk)
                continue
            self.pulled += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}
        await asyncio.Event().wait()  # the body is over: the client waits for the answer

    async def _send(self, message):
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def run(self):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8080),
        }
        asyncio.run(asyncio.wait_for(self.app(scope, self._receive, self._send), 30))
        return self

    def error(self) -> dict:
        return json.loads(self.body)["error"]


@pytest.fixture
def uploads(tmp_path):
    """Where the app writes uploads: empty after every request, whatever happened."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def app_for(uploads, limit=1024 * 1024, idle_s=60.0, url="127.0.0.1:1"):
    return create_app(GatewayConfig(url=url, max_upload_bytes=limit, upload_idle_s=idle_s, temp_dir=uploads))


def post(app, body: bytes, content_type: str, *, pieces: int = 1, length: bool = True, headers=(), **kw):
    size = max(1, len(body) // pieces)
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    all_headers = [("content-type", content_type), *headers] + ([("content-length", str(len(body)))] if length else [])
    return Call(app, headers=all_headers, chunks=chunks, **kw).run()


def wav_bytes(seconds: float = 0.5, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    sf.write(out, (np.sin(np.arange(int(seconds * rate)) / 8) * 8000).astype(np.int16), rate, format="WAV")
    return out.getvalue()


@pytest.mark.parametrize(
    "fields,file,code",
    [
        ({"model": "whisper-1"}, None, "missing_file"),
        ({"model": "whisper-1"}, b"", "empty_file"),
        ({"model": "whisper-1"}, b"this is text, not audio\n" * 50, "invalid_file_format"),
        ({"model": "whisper-1", "language": "xx-nope"}, wav_bytes(), "unsupported_language"),
    ],
)
def test_bad_input_is_a_400_in_openais_shape(uploads, fields, file, code):
    body, content_type = multipart(fields, file)
    call = post(app_for(uploads), body, content_type)
    assert call.status == 400 and call.error()["code"] == code and call.error()["type"] == "invalid_request_error"
    assert list(uploads.iterdir()) == []


def test_a_body_that_is_not_multipart_is_a_400(uploads):
    call = post(app_for(uploads), b'{"file": "x"}', "application/json")
    assert call.status == 400 and call.error()["code"] == "invalid_content_type"


def test_an_upload_announced_too_large_is_refused_before_it_is_read(uploads):
    """Content-Length over the limit: 413 at once; what the client sends meanwhile is read
    and dropped up to DRAIN_BYTES (so it hears the answer), never kept."""
    app = app_for(uploads, limit=1024 * 1024)
    chunks = [b"x" * 2**20] * 64  # 64 MB on its way
    call = Call(
        app,
        headers=[("content-type", "multipart/form-data; boundary=b"), ("content-length", str(64 * 2**20))],
        chunks=chunks,
    ).run()
    assert call.status == 413 and call.error()["code"] == "file_too_large"
    assert call.pulled <= DRAIN_BYTES + 2**20
    assert list(uploads.iterdir()) == []


def test_an_upload_that_grows_past_the_limit_is_cut_off_as_it_streams(uploads):
    body, content_type = multipart({"model": "whisper-1"}, b"\0" * (3 * 1024 * 1024))
    call = post(app_for(uploads, limit=1024 * 1024), body, content_type, pieces=30, length=False)
    assert call.status == 413 and list(uploads.iterdir()) == []


def test_a_client_that_leaves_or_stalls_mid_upload_leaves_nothing_behind(uploads):
    body, content_type = multipart({"model": "whisper-1"}, wav_bytes(2.0))
    half = body[: len(body) // 2]
    gone = Call(app_for(uploads), headers=[("content-type", content_type)], chunks=[half, None]).run()
    assert gone.status in (0, 499) and list(uploads.iterdir()) == []
    stalled = Call(app_for(uploads, idle_s=0.3), headers=[("content-type", content_type)], chunks=[half, 2.0]).run()
    assert stalled.status == 408 and stalled.error()["code"] == "request_timeout"
    assert list(uploads.iterdir()) == []


def test_an_unreachable_server_is_a_503_with_retry_after(uploads):
    body, content_type = multipart({"model": "whisper-1", "language": "de"}, wav_bytes())
    call = post(app_for(uploads, url="127.0.0.1:1"), body, content_type)
    assert call.status == 503 and call.error()["code"] == "server_unavailable"
    assert int(call.response_headers["retry-after"]) > 0 and list(uploads.iterdir()) == []


def test_a_key_goes_as_a_bearer_token_only(uploads):
    body, content_type = multipart({"model": "whisper-1"}, wav_bytes())
    call = post(app_for(uploads), body, content_type, headers=[("authorization", "Basic dXNlcjpwYXNz")])
    assert call.status == 401 and call.error()["code"] == "invalid_api_key"


def test_models_are_listed_and_anything_else_is_a_404_in_openais_shape(uploads):
    app = app_for(uploads)
    listed = json.loads(Call(app, "/v1/models", "GET").run().body)
    assert listed["object"] == "list" and "whisper-1" in [m["id"] for m in listed["data"]]
    one = json.loads(Call(app, "/v1/models/whisper-1", "GET").run().body)
    assert one == {**one, "id": "whisper-1", "object": "model"}
    missing = Call(app, "/v1/chat/completions", "POST").run()
    assert missing.status == 404 and missing.error()["code"] == "not_found"
    wrong = Call(app, "/v1/audio/transcriptions", "GET").run()
    assert wrong.status == 405


# --- the command -----------------------------------------------------------------------------
def test_the_gateway_keeps_to_loopback_unless_the_server_demands_a_key(monkeypatch):
    """Beyond loopback it starts only when it can tell that the server demands a key (here it
    cannot reach one at all), as `serve` refuses a network bind without a key."""
    monkeypatch.delenv("LIVETRANSLATE_API_KEY", raising=False)
    out = CliRunner().invoke(cli.main, ["gateway", "--host", "0.0.0.0", "--url", "127.0.0.1:1"])
    assert out.exit_code == 1 and "refusing to listen on 0.0.0.0" in out.output, out.output
    out = CliRunner().invoke(cli.main, ["gateway", "--https-cert", __file__])
    assert out.exit_code == 2 and "--https-key" in out.output
