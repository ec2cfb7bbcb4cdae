"""Two real Triton servers sharing one real redis-server (`--store redis://...`): a viewer on
one server follows a speaker on the other, both give the same session list and export, a
server killed with -9 has its session ended by the other within the lease, and its speaker's
client goes on with the same session on the other server."""

import subprocess
import sys
import threading
import time
import uuid

import pytest

from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.protocol import EventKind, SessionOptions
from livetranslate.server import ServerOptions, TritonServer

from conftest import ARTIFACTS, free_port
from redisd import RedisServer

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]
LEASE_S = 4.0


def key(e):
    return (e.kind, e.text, e.segment_id, e.first_segment_id, e.language)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def replica(name, redis, tmp_path_factory) -> TritonServer:
    options = ServerOptions(grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(), host="127.0.0.1",
                            llm="gemma3-270m", data_dir=tmp_path_factory.mktemp(f"unused-{name}"), store=redis.url,
                            env={"LIVETRANSLATE_STORE_LEASE_S": str(LEASE_S)})
    server = TritonServer(options, log_file=ARTIFACTS / f"triton-replica-{name}.log")
    server.start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def pair(redis, tmp_path_factory):
    a, b = replica("a", redis, tmp_path_factory), replica("b", redis, tmp_path_factory)
    yield a, b
    for server in (a, b):
        server.stop()


def watch_until_end(url, name, out, language=None):
    """A viewer there from the start: waits for the session to exist."""
    with PipelineClient(url) as client:
        while True:
            events = list(client.watch(name, language=language))
            if len(events) == 1 and events[0].kind == EventKind.END and "no session named" in events[0].error:
                time.sleep(0.05)
                continue
            out.extend(events)
            return


def test_a_viewer_on_another_server_sees_exactly_what_the_speaker_saw(pair, audio_files):
    a, b = pair
    name = f"replicas-{uuid.uuid4().hex[:6]}"
    seen_b, seen_a = [], []
    viewers = [threading.Thread(target=watch_until_end, args=(b.grpc_url, name, seen_b)),
               threading.Thread(target=watch_until_end, args=(a.grpc_url, name, seen_a))]
    for viewer in viewers:
        viewer.start()
    pcm, rate = read_audio(audio_files["speech_b"])
    with PipelineClient(a.grpc_url) as client:
        spoken = [e for e in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=True)
                  if e.kind != EventKind.PARTIAL]
    for viewer in viewers:
        viewer.join(60)
    assert spoken[-1].kind == EventKind.END and not spoken[-1].error
    assert [e for e in spoken if e.kind == EventKind.TRANSLATION and e.text]
    assert [key(e) for e in seen_b if e.kind != EventKind.PARTIAL] == [key(e) for e in spoken]
    assert [key(e) for e in seen_a if e.kind != EventKind.PARTIAL] == [key(e) for e in spoken]

    # the session list, one session and its export are the same on both servers
    with PipelineClient(a.grpc_url) as on_a, PipelineClient(b.grpc_url) as on_b:
        listed = [on.sessions() for on in (on_a, on_b)]
        assert [s["name"] for s in listed[0]] == [s["name"] for s in listed[1]] and name in [s["name"] for s in listed[0]]
        got = [on.sessions("get", name) for on in (on_a, on_b)]
        assert got[0] == got[1] and got[0]["info"]["state"] == "ended"
    exports = [subprocess.run(CLI + ["export", name, "--url", server.grpc_url, "--format", "srt"], capture_output=True,
                              text=True, timeout=60, check=True).stdout for server in (a, b)]
    assert exports[0] == exports[1] and "-->" in exports[0]


def test_a_killed_servers_session_is_ended_for_its_viewers_within_the_lease(redis, tmp_path_factory, audio_files):
    doomed = replica("doomed", redis, tmp_path_factory)
    survivor = replica("survivor", redis, tmp_path_factory)
    try:
        name = f"killed-{uuid.uuid4().hex[:6]}"
        pcm, rate = read_audio(audio_files["speech"])
        seen, spoken = [], []
        viewer = threading.Thread(target=watch_until_end, args=(survivor.grpc_url, name, seen))
        viewer.start()
        first_transcript = threading.Event()

        def speak():
            try:
                with PipelineClient(doomed.grpc_url) as client:
                    for event in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate, translate=False),
                                               realtime=True):
                        spoken.append(event)
                        if event.kind == EventKind.TRANSCRIPT:
                            first_transcript.set()
            except Exception:
                pass  # its server is killed under it

        speaker = threading.Thread(target=speak, daemon=True)
        speaker.start()
        assert first_transcript.wait(90)
        doomed.kill()
        killed = time.monotonic()
        viewer.join(LEASE_S + 30)
        assert not viewer.is_alive()
        told_after = time.monotonic() - killed
        end = seen[-1]
        assert end.kind == EventKind.END and "stopped" in end.error, end
        assert told_after < LEASE_S + 5, told_after
        transcripts = [e.segment_id for e in spoken if e.kind == EventKind.TRANSCRIPT]
        assert [e.segment_id for e in seen if e.kind == EventKind.TRANSCRIPT] == transcripts

        # the speaker goes on on the survivor: the same session, segment ids go on
        with PipelineClient(survivor.grpc_url) as client:
            more = list(client.stream(chunks(pcm[: rate * 6], rate // 10), SessionOptions(name, rate, translate=False)))
        assert more[-1].kind == EventKind.END and not more[-1].error
        ids = [e.segment_id for e in more if e.kind == EventKind.TRANSCRIPT]
        assert ids and ids[0] == transcripts[-1] + 1
        with PipelineClient(survivor.grpc_url) as client:
            stored = client.sessions("get", name)
        stored_ids = [e.segment_id for e in stored["events"] if e.kind == EventKind.TRANSCRIPT]
        assert stored_ids == list(range(len(stored_ids))) == transcripts + ids  # no gap, no duplicate
    finally:
        doomed.kill()
        survivor.stop()
