"""The OpenAI-compatible gateway against a real server, with the official `openai` package as
its client: transcriptions and translations in every response format, server-sent events,
/v1/models, the errors, a caller who leaves mid-stream, the keys of a server started with
one, and `livetranslate gateway` itself."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import httpx2
import numpy as np
import openai
import pytest
import soundfile as sf
import srt
import uvicorn
import webvtt
from conftest import ARTIFACTS, free_port

from livetranslate.audio import read_audio
from livetranslate.client import Connection, PipelineClient
from livetranslate.gateway import GatewayConfig, create_app
from livetranslate.launcher import ServerOptions, TritonServer

pytestmark = pytest.mark.slow
KEY = "gateway-key-" + uuid.uuid4().hex
# what the German test speech says, and its English (the small test LLM's wording varies)
GERMAN = ("Projekt", "Zeitplan")
PROJECT, SCHEDULE = "project", ("schedule", "timeline", "time plan", "timetable", "time frame")


@contextlib.contextmanager
def gateway_at(url: str, **config):
    """The gateway in this process (uvicorn on a thread), its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(GatewayConfig(url=url, **config)), host="127.0.0.1", port=free_port(), log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the gateway did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    return tmp_path_factory.mktemp("gateway-uploads")


@pytest.fixture(scope="module")
def gateway(server, uploads):
    with gateway_at(server.grpc_url, temp_dir=uploads) as base:
        yield base


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway, api_key="not-checked-by-this-server", max_retries=0, timeout=300)


def speech(audio_files):
    return open(audio_files["speech"], "rb")


def test_a_transcription_is_what_was_said(client, audio_files, server, uploads):
    name = f"gateway-test-{uuid.uuid4().hex[:6]}"
    made = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=speech(audio_files), language="de", extra_body={"session": name}
    )
    text = made.parse().text
    assert all(word in text for word in GERMAN), text
    assert made.headers["x-livetranslate-session"] == name
    # the request's session is stored, as every session is
    with PipelineClient(server.grpc_url) as grpc:
        stored = {info["name"]: info for info in grpc.sessions("list")}
    assert stored[name]["counts"]["transcript"] >= 4
    assert list(uploads.iterdir()) == []  # the upload is gone
    # unless the caller says not to: the same answer, and nothing kept
    private = f"gateway-private-{uuid.uuid4().hex[:6]}"
    kept = client.audio.transcriptions.create(
        model="whisper-1", file=speech(audio_files), language="de", extra_body={"session": private, "store": "false"}
    )
    assert all(word in kept.text for word in GERMAN), kept.text
    with PipelineClient(server.grpc_url) as grpc:
        assert private not in {info["name"] for info in grpc.sessions("list")}


def test_verbose_json_has_segments_and_words_at_the_top_level(client, audio_files, tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg makes the mp3 (scripts/setup.sh installs it)")
    mp3 = tmp_path / "speech.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(audio_files["speech"]), str(mp3)], check=True)
    made = client.audio.transcriptions.create(
        model="whisper-1",
        file=open(mp3, "rb"),  # any format ffmpeg reads
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )  # no language: detected
    assert made.language == "german" and 20 < made.duration < 30
    assert len(made.segments) >= 4 and made.text == " ".join(s.text for s in made.segments)
    # one word object per word of the text, in order, each inside its segment's time
    assert [w.word for w in made.words] == made.text.split()
    assert all(w.end >= w.start for w in made.words)
    assert [w.start for w in made.words] == sorted(w.start for w in made.words)
    first = made.segments[0]
    assert first.start <= made.words[0].start < first.end
    starts = [s.start for s in made.segments]
    assert starts == sorted(starts) and all(s.end > s.start for s in made.segments)
    assert made.segments[-1].end <= made.duration + 0.5


def test_text_srt_and_vtt_parse_as_their_kind(client, audio_files):
    text = client.audio.transcriptions.create(
        model="whisper-1", file=speech(audio_files), language="de", response_format="text"
    )
    assert isinstance(text, str) and any(word in text for word in GERMAN)
    subtitles = client.audio.transcriptions.create(
        model="whisper-1", file=speech(audio_files), language="de", response_format="srt"
    )
    cues = list(srt.parse(subtitles))
    assert len(cues) >= 4 and any(word in " ".join(c.content for c in cues) for word in GERMAN)
    assert all(c.end > c.start for c in cues)
    captions = client.audio.transcriptions.create(
        model="whisper-1", file=speech(audio_files), language="de", response_format="vtt"
    )
    read = webvtt.from_buffer(io.StringIO(captions))
    assert len(read) >= 4 and any(word in " ".join(c.text for c in read) for word in GERMAN)


def test_a_streamed_transcription_comes_segment_by_segment(client, audio_files):
    events = list(
        client.audio.transcriptions.create(model="whisper-1", file=speech(audio_files), language="de", stream=True)
    )
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 4 and events[-1].type == "transcript.text.done"
    assert "".join(d.delta for d in deltas) == events[-1].text
    assert any(word in events[-1].text for word in GERMAN)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the openai package marks translations so
def test_a_translation_is_english_and_any_target_on_request(client, audio_files):
    english = client.audio.translations.create(model="whisper-1", file=speech(audio_files)).text.lower()
    assert PROJECT in english and any(word in english for word in SCHEDULE), english
    verbose = client.audio.translations.create(
        model="whisper-1",
        file=speech(audio_files),
        response_format="verbose_json",
        extra_body={"language": "de", "target_language": "fr"},
    )
    assert verbose.language == "french" and len(verbose.segments) >= 3
    assert "projet" in verbose.text.lower(), verbose.text
    subtitles = client.audio.translations.create(model="whisper-1", file=speech(audio_files), response_format="srt")
    assert PROJECT in " ".join(c.content for c in srt.parse(subtitles)).lower()


def test_a_streamed_translation_sends_events_then_the_best_text(gateway, audio_files):
    with httpx2.Client(timeout=300) as http:
        with http.stream(
            "POST",
            f"{gateway}/audio/translations",
            data={"model": "whisper-1", "language": "de", "stream": "true"},
            files={"file": speech(audio_files)},
        ) as answer:
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[len("data: ") :]) for line in answer.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events].count("transcript.text.delta") >= 3
    assert events[-1]["type"] == "transcript.text.done" and PROJECT in events[-1]["text"].lower()


def test_models_are_listed(client):
    assert "whisper-1" in [m.id for m in client.models.list()]
    assert client.models.retrieve("whisper-1").id == "whisper-1"


def test_bad_input_gets_openai_errors(client, gateway, server, audio_files, tmp_path):
    def refused(status, code, **kw):
        with pytest.raises(openai.APIStatusError) as caught:
            client.audio.transcriptions.create(model="whisper-1", **kw)
        assert caught.value.status_code == status and caught.value.body["code"] == code, caught.value.body

    refused(400, "empty_file", file=("empty.wav", b""))
    refused(400, "invalid_file_format", file=("notes.txt", b"Das ist kein Audio.\n" * 100))
    refused(400, "unsupported_language", file=speech(audio_files), language="klingonisch")
    with httpx2.Client(timeout=60) as http:  # the openai client always sends a file
        answer = http.post(f"{gateway}/audio/transcriptions", data={"model": "whisper-1"}, files={"x": ("x", b"1")})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "missing_file"
    with gateway_at(server.grpc_url, max_upload_bytes=256 * 1024) as small:
        tight = openai.OpenAI(base_url=small, api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            tight.audio.transcriptions.create(model="whisper-1", file=speech(audio_files))  # about 1 MB
        assert caught.value.status_code == 413 and caught.value.body["code"] == "file_too_large"


def _count(url: str, name: str) -> int:
    with PipelineClient(url) as grpc:
        return next((i["counts"].get("transcript", 0) for i in grpc.sessions("list") if i["name"] == name), 0)


def test_a_caller_who_leaves_mid_stream_cancels_the_stream(gateway, server, audio_files, uploads, tmp_path):
    """The gRPC stream is cancelled: the session stops growing long before the file's end,
    and the gateway keeps no upload and no thread of it."""
    pcm, rate = read_audio(audio_files["speech"])
    long_file = tmp_path / "long.wav"
    sf.write(long_file, np.tile(pcm, 6), rate, subtype="PCM_16")  # 2.5 min, 30 sentences
    threads = threading.active_count()
    name = f"gateway-leaves-{uuid.uuid4().hex[:6]}"
    with httpx2.Client(timeout=300) as http:
        with http.stream(
            "POST",
            f"{gateway}/audio/transcriptions",
            data={"model": "whisper-1", "language": "de", "stream": "true", "session": name},
            files={"file": open(long_file, "rb")},
        ) as answer:
            assert answer.status_code == 200
            next(line for line in answer.iter_lines() if line.startswith("data: "))
    time.sleep(3.0)  # the cancel reaches the server
    settled = _count(server.grpc_url, name)
    time.sleep(4.0)
    assert _count(server.grpc_url, name) == settled < 20
    deadline = time.monotonic() + 10
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.2)
    assert threading.active_count() <= threads and list(uploads.iterdir()) == []


def test_the_command_serves_the_api(server, audio_files):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVETRANSLATE_")}
    command = [sys.executable, "-m", "livetranslate.cli", "gateway", "--port", str(port), "--url", server.grpc_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                api.models.list()
                break
            except openai.APIConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "the gateway did not start"
                time.sleep(0.3)
        text = api.audio.transcriptions.create(
            model="whisper-1", file=speech(audio_files), language="de", response_format="text"
        )
        assert any(word in text for word in GERMAN)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    # uvicorn ends gracefully, then dies of the signal it caught, as a process told to stop does
    assert process.returncode in (0, -15) and "Application shutdown complete" in output, output[-2000:]
    assert f"gateway on http://127.0.0.1:{port}/v1 in front of {server.grpc_url}" in output


# --- a server started with a client key ---------------------------------------------------------
@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        api_key=KEY,
        data_dir=tmp_path_factory.mktemp("keyed-sessions"),
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-gateway-keys.log") as srv:
        yield srv


def test_the_servers_key_goes_as_a_bearer_token(keyed_server, audio_files):
    with gateway_at(keyed_server.grpc_url) as base:
        for key in ("wrong-" + uuid.uuid4().hex, None):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            with httpx2.Client(timeout=120) as http:
                answer = http.post(
                    f"{base}/audio/transcriptions",
                    headers=headers,
                    data={"model": "whisper-1", "language": "de"},
                    files={"file": speech(audio_files)},
                )
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key", answer.text
        right = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0, timeout=300)
        text = right.audio.transcriptions.create(
            model="whisper-1", file=speech(audio_files), language="de", response_format="text"
        )
        assert any(word in text for word in GERMAN)
    with PipelineClient(Connection(keyed_server.grpc_url, api_key=KEY)) as grpc:
        assert any(info["name"].startswith("gateway-") for info in grpc.sessions("list"))
