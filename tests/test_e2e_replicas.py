"""Two real Triton servers sharing one real redis-server (`--store redis://...`): a viewer on
one server follows a speaker on the other, both give the same session list and export, a
server killed with -9 has its session ended by the other within the lease, and its speaker's
client goes on with the same session on the other server."""

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
from conftest import ARTIFACTS, free_port
from redisd import RedisServer

from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.launcher import ServerOptions, TritonServer
from livetranslate.protocol import INTERIM_KINDS, EventKind, SessionOptions

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
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        data_dir=tmp_path_factory.mktemp(f"unused-{name}"),
        store=redis.url,
        env={"LIVETRANSLATE_STORE_LEASE_S": str(LEASE_S)},
    )
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
    seen_b, seen_a, french_b = [], [], []
    viewers = [
        threading.Thread(target=watch_until_end, args=(b.grpc_url, name, seen_b)),
        threading.Thread(target=watch_until_end, args=(a.grpc_url, name, seen_a)),
        threading.Thread(target=watch_until_end, args=(b.grpc_url, name, french_b, "fr")),
    ]
    for viewer in viewers:
        viewer.start()
    pcm, rate = read_audio(audio_files["speech_b"])
    with PipelineClient(a.grpc_url) as client:
        spoken = [
            e
            for e in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=True)
            if e.kind not in INTERIM_KINDS
        ]
    for viewer in viewers:
        viewer.join(60)
    assert spoken[-1].kind == EventKind.END and not spoken[-1].error
    assert [e for e in spoken if e.kind == EventKind.TRANSLATION and e.text]
    assert [key(e) for e in seen_b if e.kind not in INTERIM_KINDS] == [key(e) for e in spoken]
    assert [key(e) for e in seen_a if e.kind not in INTERIM_KINDS] == [key(e) for e in spoken]
    # a viewer on B reading French: the speaker's server (A) translates for it too
    french = [e for e in french_b if e.kind == EventKind.TRANSLATION]
    assert french and all(e.language == "fr" for e in french) and any(e.text for e in french), french_b
    assert [e.text for e in french_b if e.kind == EventKind.TRANSCRIPT] == [
        e.text for e in spoken if e.kind == EventKind.TRANSCRIPT
    ]

    # the session list, one session and its export are the same on both servers
    with PipelineClient(a.grpc_url) as on_a, PipelineClient(b.grpc_url) as on_b:
        listed = [on.sessions() for on in (on_a, on_b)]
        assert [s["name"] for s in listed[0]] == [s["name"] for s in listed[1]] and name in [
            s["name"] for s in listed[0]
        ]
        got = [on.sessions("get", name) for on in (on_a, on_b)]
        assert got[0] == got[1] and got[0]["info"]["state"] == "ended"
    exports = [
        subprocess.run(
            CLI + ["export", name, "--url", server.grpc_url, "--format", "srt"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for server in (a, b)
    ]
    assert exports[0] == exports[1] and "-->" in exports[0]


def read_jsonl(path):
    from livetranslate.protocol import Event

    events = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                d = json.loads(line)
                events.append(Event(**{**d, "kind": EventKind(d["kind"])}))
            except (ValueError, KeyError, TypeError):
                pass  # the line being written
    return events


def speaker_cli(urls, path, name, out, *more):
    """`livetranslate stream FILE --realtime` given several servers, as a speaker runs it."""
    return subprocess.Popen(
        CLI
        + [
            "stream",
            str(path),
            "--realtime",
            "--session",
            name,
            "--url",
            ",".join(urls),
            "--format",
            "jsonl",
            "--out",
            str(out),
            *more,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(check, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout_s} s")


def stored_transcript_ids(url, name):
    with PipelineClient(url) as client:
        stored = client.sessions("get", name)
    return [e.segment_id for e in stored["events"] if e.kind == EventKind.TRANSCRIPT], stored


def test_nothing_acknowledged_is_lost_when_redis_restarts_mid_session(pair, redis, audio_files):
    a, b = pair
    name = f"redis-restart-{uuid.uuid4().hex[:6]}"
    pcm, rate = read_audio(audio_files["speech_b"])
    spoken, restarted = [], threading.Event()

    def restart_after_first_transcript():
        wait_for(lambda: any(e.kind == EventKind.TRANSCRIPT for e in spoken), 90, "transcript")
        redis.restart()  # SIGTERM, then start again on the same append-only file
        restarted.set()

    restarter = threading.Thread(target=restart_after_first_transcript)
    restarter.start()
    with PipelineClient(b.grpc_url) as client:
        for event in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=True):
            if event.kind not in INTERIM_KINDS:
                spoken.append(event)
    restarter.join(120)
    assert restarted.is_set()
    assert spoken[-1].kind == EventKind.END and not spoken[-1].error, spoken[-1]
    assert not [e for e in spoken if e.kind == EventKind.ERROR]
    with PipelineClient(a.grpc_url) as client:
        stored = client.sessions("get", name)["events"]
    assert [key(e) for e in stored] == [key(e) for e in spoken]  # every event the speaker got, on the other server


def test_a_drained_servers_speaker_goes_on_on_the_other_server_without_a_break(pair, audio_files, tmp_path):
    a, b = pair
    name = f"drained-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "speaker.jsonl"
    seen = []
    viewer = threading.Thread(target=watch_until_end, args=(b.grpc_url, name, seen))
    viewer.start()
    speaker = speaker_cli([a.grpc_url, b.grpc_url], audio_files["speech"], name, out, "--no-translate")
    try:
        wait_for(lambda: sum(e.kind == EventKind.TRANSCRIPT for e in read_jsonl(out)) >= 2, 90, "two transcripts")
        a.stop()  # SIGTERM's path: refuse newcomers, a grace, then hand the streams over
        _, err = speaker.communicate(timeout=180)
        assert speaker.returncode == 0, err
    finally:
        speaker.kill()
    viewer.join(60)
    events = read_jsonl(out)
    assert events[-1].kind == EventKind.END and not events[-1].error
    ids = [e.segment_id for e in events if e.kind == EventKind.TRANSCRIPT]
    assert len(ids) >= 4 and ids == sorted(set(ids)), ids
    stored, _ = stored_transcript_ids(b.grpc_url, name)
    assert stored == list(range(len(stored))) and set(ids) <= set(stored)  # no gap, no duplicate
    # the viewer on the other server saw one session: no `end` until the speaker's own
    assert [e.kind for e in seen].count(EventKind.END) == 1 and not seen[-1].error
    assert [e.segment_id for e in seen if e.kind == EventKind.TRANSCRIPT] == stored


def test_a_killed_servers_session_is_ended_for_its_viewers_and_its_speaker_goes_on_elsewhere(
    pair, redis, tmp_path_factory, audio_files, tmp_path
):
    _, survivor = pair
    doomed = replica("doomed", redis, tmp_path_factory)
    try:
        name = f"killed-{uuid.uuid4().hex[:6]}"
        out = tmp_path / "speaker.jsonl"
        seen = []
        viewer = threading.Thread(target=watch_until_end, args=(survivor.grpc_url, name, seen))
        viewer.start()
        speaker = speaker_cli([doomed.grpc_url, survivor.grpc_url], audio_files["speech"], name, out, "--no-translate")
        try:
            wait_for(lambda: sum(e.kind == EventKind.TRANSCRIPT for e in read_jsonl(out)) >= 2, 90, "two transcripts")
            doomed.kill()
            killed = time.monotonic()
            viewer.join(LEASE_S + 30)
            told_after = time.monotonic() - killed
            _, err = speaker.communicate(timeout=180)
            assert speaker.returncode == 0, err
        finally:
            speaker.kill()
        # the viewer was told, within the lease (and a reaper round), that the server stopped
        assert seen and seen[-1].kind == EventKind.END and "stopped" in seen[-1].error, seen[-1:]
        assert told_after < LEASE_S + 5, told_after
        # the speaker's client went on on the survivor: the same session, segment ids go on
        events = read_jsonl(out)
        assert events[-1].kind == EventKind.END and not events[-1].error
        ids = [e.segment_id for e in events if e.kind == EventKind.TRANSCRIPT]
        before = [e.segment_id for e in seen if e.kind == EventKind.TRANSCRIPT]
        assert len(ids) > len(before) >= 2 and ids == sorted(set(ids)), (ids, before)
        stored, info = stored_transcript_ids(survivor.grpc_url, name)
        assert stored == list(range(len(stored))) == ids  # both parts, no gap, no duplicate
        assert info["info"]["state"] == "ended"
    finally:
        doomed.kill()
