"""Named client keys against a real server (`serve --keys-file`): Triton forwards each
request's key to `pipeline` and `sessions`; a request without a known key opens nothing; each
client keeps within its own quota and a refusal names the limit that was hit."""

import threading
import time
import uuid

import pytest
from conftest import ARTIFACTS, free_port

from livetranslate.audio import chunks, read_audio
from livetranslate.client import ClientError, Connection, PipelineClient
from livetranslate.launcher import ServerOptions, TritonServer
from livetranslate.protocol import EventKind, SessionOptions

pytestmark = pytest.mark.slow
ALICE, BOB = "alice-key-" + uuid.uuid4().hex, "bob-key-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    keys = folder / "keys"
    keys.write_text(f"alice {ALICE} streams=1 viewers=1\nbob {BOB}\n")
    keys.chmod(0o600)
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        data_dir=folder / "sessions",
        keys_file=keys,
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-keys.log") as server:
        yield server


def speak(url, key, session, seconds=None, realtime=False, audio=None):
    pcm, rate = audio
    if seconds is not None:
        pcm = pcm[: int(seconds * rate)]
    with PipelineClient(Connection(url, api_key=key)) as client:
        return list(
            client.stream(chunks(pcm, rate // 10), SessionOptions(session, rate, translate=False), realtime=realtime)
        )


def test_a_request_without_a_known_key_opens_nothing(keyed_server, audio_files):
    audio = read_audio(audio_files["speech"])
    for key in (None, "wrong-key-" + uuid.uuid4().hex):
        events = speak(keyed_server.grpc_url, key, f"nokey-{uuid.uuid4().hex[:6]}", seconds=2, audio=audio)
        assert events[-1].kind == EventKind.END and "needs a client key" in events[-1].error, events
        assert not [e for e in events if e.kind == EventKind.TRANSCRIPT]
        with PipelineClient(Connection(keyed_server.grpc_url, api_key=key)) as client:
            with pytest.raises(ClientError, match="needs a client key"):
                client.sessions()


def test_each_client_keeps_within_its_own_quota(keyed_server, audio_files):
    audio = read_audio(audio_files["speech"])
    first: list = []
    talking = threading.Thread(
        target=lambda: first.extend(
            speak(keyed_server.grpc_url, ALICE, f"alice-{uuid.uuid4().hex[:6]}", seconds=8, realtime=True, audio=audio)
        )
    )
    talking.start()
    time.sleep(2.0)  # alice's first stream is live
    second = speak(keyed_server.grpc_url, ALICE, f"alice2-{uuid.uuid4().hex[:6]}", seconds=2, audio=audio)
    assert second[-1].kind == EventKind.END and second[-1].error == (
        "client 'alice' already has 1 speaker stream(s) live, the most its key allows; "
        "try again when one of them has ended"
    )
    bobs = speak(keyed_server.grpc_url, BOB, f"bob-{uuid.uuid4().hex[:6]}", seconds=8, audio=audio)  # bob's own
    assert bobs[-1].kind == EventKind.END and not bobs[-1].error and [e for e in bobs if e.kind == EventKind.TRANSCRIPT]
    talking.join(120)
    assert first[-1].kind == EventKind.END and not first[-1].error
    assert [e for e in first if e.kind == EventKind.TRANSCRIPT]
    # alice's place is free again, and her key reads the sessions
    again = speak(keyed_server.grpc_url, ALICE, f"alice3-{uuid.uuid4().hex[:6]}", seconds=2, audio=audio)
    assert again[-1].kind == EventKind.END and not again[-1].error
    with PipelineClient(Connection(keyed_server.grpc_url, api_key=ALICE)) as client:
        assert client.sessions()
