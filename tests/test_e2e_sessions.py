"""Durable sessions, viewers and exports against a real server (the dashboard: test_e2e_dashboard.py)."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import srt
import tritonclient.grpc as grpcclient
from conftest import ARTIFACTS, free_port

from livetranslate import protocol as P
from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.launcher import ServerOptions, TritonServer
from livetranslate.present.cues import cues_for
from livetranslate.present.export import export
from livetranslate.protocol import INTERIM_KINDS, EventKind, SessionOptions

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]


def key(e):
    return (e.kind, e.text, e.segment_id, e.first_segment_id)


def speak(url, path, name, received, started=None, partials=None):
    pcm, rate = read_audio(path)
    with PipelineClient(url) as client:
        for event in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=True):
            if event.kind in INTERIM_KINDS:  # interim: to the speaker and live viewers, never stored
                if partials is not None:
                    partials.append(event)
                continue
            received.append(event)
            if started is not None and event.kind == EventKind.TRANSCRIPT:
                started.set()


def test_two_viewers_mid_session_see_exactly_what_the_speaker_saw(server, audio_files):
    spoken, started, interim = [], threading.Event(), []
    speaker = threading.Thread(
        target=speak, args=(server.grpc_url, audio_files["speech"], "watched", spoken, started, interim)
    )
    speaker.start()
    assert started.wait(60)
    views = [[], []]

    def view(i):
        with PipelineClient(server.grpc_url) as client:
            views[i].extend(client.watch("watched"))

    viewers = [threading.Thread(target=view, args=(i,)) for i in range(2)]
    for t in viewers:
        t.start()
    speaker.join(120)
    for t in viewers:
        t.join(60)
    assert spoken[-1].kind == EventKind.END
    for seen in views:
        assert [key(e) for e in seen if e.kind not in INTERIM_KINDS] == [key(e) for e in spoken]
        # interim text only as the speaker saw it (whether there is any depends on the load:
        # test_stream_spec and test_e2e_captions check that viewers get it)
        assert {key(e) for e in seen if e.kind in INTERIM_KINDS} <= {key(e) for e in interim}


def test_a_viewer_that_never_reads_does_not_stall_the_speaker(server, audio_files):
    spoken, started = [], threading.Event()
    speaker = threading.Thread(
        target=speak, args=(server.grpc_url, audio_files["speech_b"], "stuck-viewer", spoken, started)
    )
    speaker.start()
    assert started.wait(60)
    client = grpcclient.InferenceServerClient(server.grpc_url)
    block = threading.Event()
    client.start_stream(callback=lambda result, error: block.wait(120))  # never returns: reads nothing
    tensors = [grpcclient.InferInput(P.AUDIO, [0], "INT16"), grpcclient.InferInput(P.SUBSCRIBE, [1], "BYTES")]
    tensors[0].set_data_from_numpy(np.zeros(0, np.int16))
    tensors[1].set_data_from_numpy(np.array([b"stuck-viewer"], dtype=np.object_))
    client.async_stream_infer(P.PIPELINE, tensors, sequence_id=424242, sequence_start=True, sequence_end=True)
    speaker.join(90)
    block.set()
    client.stop_stream(cancel_requests=True)
    assert not speaker.is_alive() and spoken[-1].kind == EventKind.END
    latencies = [e.latency_ms for e in spoken if e.kind == EventKind.TRANSCRIPT]
    assert max(latencies) < 5000, latencies


def test_unknown_session_is_a_clear_error(server):
    out = subprocess.run(
        CLI + ["watch", "no-such-session", "--url", server.grpc_url], capture_output=True, text=True, timeout=60
    )
    hint = "Error: no session named 'no-such-session': `livetranslate sessions` lists the stored sessions\n"
    assert out.returncode == 1 and out.stderr == hint  # like every other error, with where to look
    out = subprocess.run(
        CLI + ["export", "no-such-session", "--url", server.grpc_url], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and out.stderr == hint


def test_export_and_list(server, audio_files, tmp_path):
    spoken = []
    speak(server.grpc_url, audio_files["speech_b"], "export-me", spoken)
    listed = subprocess.run(CLI + ["sessions", "--url", server.grpc_url], capture_output=True, text=True, timeout=60)
    assert "export-me" in listed.stdout and "ended" in listed.stdout
    transcripts = [e for e in spoken if e.kind == EventKind.TRANSCRIPT]
    # --text first: a cue per sentence, its transcript and then its first translation
    out = tmp_path / "first.srt"
    subprocess.run(
        CLI
        + [
            "export",
            "export-me",
            "--url",
            server.grpc_url,
            "--format",
            "srt",
            "--lang",
            "both",
            "--text",
            "first",
            "-o",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    cues = list(srt.parse(out.read_text()))  # the stored session exported as the spoken one is
    assert [(c.start, c.content) for c in cues] == [
        (c.start, c.content) for c in srt.parse(export(spoken, "srt", "both", "en", "first"))
    ]
    for t in transcripts:  # each sentence's first cue starts with it, when it was said
        assert any(
            abs(c.start.total_seconds() - t.start_s) < 0.002 and c.content.startswith(t.text.split()[0]) for c in cues
        )
    # by default the best text: an enhanced window is one cue in place of the sentences it covers
    out = tmp_path / "best.srt"
    subprocess.run(
        CLI + ["export", "export-me", "--url", server.grpc_url, "--format", "srt", "--lang", "both", "-o", str(out)],
        check=True,
        timeout=60,
    )
    best = list(srt.parse(out.read_text()))
    assert [(c.start, c.content) for c in best] == [
        (c.start, c.content) for c in srt.parse(export(spoken, "srt", "both", "en", "best"))
    ]
    windows = [e for e in spoken if e.kind == EventKind.ENHANCED and e.text and not e.error]
    said = " ".join(" ".join(c.content.split()) for c in best)
    assert all(" ".join(t.text.split()) in said or t.text.split()[0] in said for t in transcripts)
    for window in windows:  # a window's text in place of its sentences' translations
        assert " ".join(window.text.split())[:30] in said


def test_a_session_streamed_again_goes_on_where_it_ended(server, audio_files, tmp_path):
    """The same session name a second time: numbering and clock go on, so the stored session
    and its exports keep both runs (a viewer sees one `end`, the last)."""
    first, second = [], []
    pcm, rate = read_audio(audio_files["speech_b"])
    for received in (first, second):
        with PipelineClient(server.grpc_url) as client:
            options = SessionOptions("twice", rate, translate=False, partials=False)
            received.extend(client.stream(chunks(pcm, rate // 10), options))
    ids = [e.segment_id for e in first + second if e.kind == EventKind.TRANSCRIPT]
    assert ids == list(range(6))
    assert second[0].start_s >= first[-1].end_s  # the second run's clock starts after the first
    with PipelineClient(server.grpc_url) as client:
        watched = list(client.watch("twice"))
        stored = client.sessions("get", "twice")
    assert [e.segment_id for e in watched if e.kind == EventKind.TRANSCRIPT] == ids
    assert [e.kind for e in watched].count(EventKind.END) == 1 and watched[-1].kind == EventKind.END
    assert stored["info"]["state"] == "ended"
    out = tmp_path / "twice.srt"
    subprocess.run(
        CLI + ["export", "twice", "--url", server.grpc_url, "--format", "srt", "--lang", "source", "-o", str(out)],
        check=True,
        timeout=60,
    )
    cues = list(srt.parse(out.read_text()))  # both runs' six sentences, in order
    transcripts = [e for e in first + second if e.kind == EventKind.TRANSCRIPT]
    assert [c.content for c in cues] == [c.text for t in transcripts for c in cues_for(t.text, t.start_s, t.end_s)]


def test_events_survive_kill_9_of_the_server(audio_files, tmp_path):
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        data_dir=tmp_path / "data",
    )
    server = TritonServer(options, log_file=ARTIFACTS / "triton-store.log").__enter__()
    received = []
    speaker = threading.Thread(
        target=lambda: pytest.raises(Exception, speak, server.grpc_url, audio_files["speech"], "crash", received)  # noqa: B017
    )
    speaker.start()
    deadline = time.monotonic() + 60
    while sum(e.kind == EventKind.TRANSCRIPT for e in received) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    server.kill()
    speaker.join(60)
    assert sum(e.kind == EventKind.TRANSCRIPT for e in received) >= 2
    with TritonServer(options, log_file=ARTIFACTS / "triton-store.log") as restarted:
        with PipelineClient(restarted.grpc_url) as client:
            report = client.sessions("get", "crash")
            watched = list(client.watch("crash", idle_timeout_s=30))  # not live forever: it ends
    stored = report["events"]
    assert [key(e) for e in stored[: len(received)]] == [key(e) for e in received]
    assert report["info"]["state"] == "ended"  # the restarted server knows no stream is left
    assert watched[-1].kind == EventKind.END and [key(e) for e in watched[:-1]] == [key(e) for e in stored]
