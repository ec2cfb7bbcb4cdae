"""Faults on a real server: the disk fills up during a stream; a stage's stub process is
killed. The stream ends with an error, nothing is left running or stuck `live`, and the
server goes on serving."""

import os
import signal
import subprocess
import threading
import time

import pytest
from conftest import ARTIFACTS, free_port

from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.launcher import ServerOptions, TritonServer
from livetranslate.protocol import EventKind, SessionOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    """A real 2 MB filesystem for the session data (tmpfs; the tests run as root)."""
    path = tmp_path_factory.mktemp("small-disk")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(path)], capture_output=True, text=True
    )
    assert mounted.returncode == 0, f"cannot mount a small tmpfs (needs root): {mounted.stderr}"
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module")
def fault_server(small_disk):
    ARTIFACTS.mkdir(exist_ok=True)
    options = ServerOptions(
        grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(), llm="gemma3-270m", data_dir=small_disk
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-faults.log") as srv:
        yield srv


def speak(server, path, name, events, on_transcript=None):
    pcm, rate = read_audio(path)
    with PipelineClient(server.grpc_url) as client:
        for event in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate, translate=False), realtime=True):
            events.append(event)
            if event.kind == EventKind.TRANSCRIPT and on_transcript is not None:
                on_transcript()


def sessions(server):
    with PipelineClient(server.grpc_url) as client:
        return {info["name"]: info["state"] for info in client.sessions("list")}


def stream_threads(wait_s: float = 5.0):
    """The client's sending threads still running, after they had `wait_s` to stop."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("livetranslate-send")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_a_full_disk_ends_the_stream_with_a_clear_error_and_nothing_else_breaks(fault_server, small_disk, audio_files):
    filler = small_disk / "filler"
    events = []

    def fill():  # the disk fills up once the stream has stored its first transcript
        if not filler.exists():
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass

    speak(fault_server, audio_files["speech"], "filled", events, on_transcript=fill)
    assert events[0].kind in (EventKind.TRANSCRIPT, EventKind.PARTIAL)
    end = events[-1]
    assert end.kind == EventKind.END and "could not be stored" in end.error
    assert "disk full" in end.error or "No space left" in end.error
    assert not stream_threads()
    filler.unlink()
    # the server goes on: the next stream works and is stored, and nothing is stuck live
    after = []
    speak(fault_server, audio_files["speech_b"], "after-full", after)
    assert after[-1].kind == EventKind.END and not after[-1].error
    assert "Bericht" in " ".join(e.text for e in after if e.kind == EventKind.TRANSCRIPT)
    deadline = time.monotonic() + 10
    while sessions(fault_server).get("filled") != "ended" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sessions(fault_server) == {"filled": "ended", "after-full": "ended"}
    assert fault_server.is_ready()


def stub_pids(server, model):
    out = subprocess.run(
        ["pgrep", "-f", f"triton_python_backend_stub.*{model}_0_0"], capture_output=True, text=True
    ).stdout.split()
    children = set(open(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read().split())
    return [int(pid) for pid in out if pid in children]


def test_a_killed_stage_is_reloaded_and_its_utterances_are_transcribed_after_all(fault_server, audio_files):
    """SIGKILL of whisper's stub in the middle of a stream: Triton answers the request in
    flight with "Stub process 'whisper_0_0' is not healthy"; the pipeline reloads the stage
    and asks again, so the speaker loses no utterance and sees no error."""
    events, killed = [], []

    def kill():
        if not killed:
            [pid] = stub_pids(fault_server, "whisper")
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    speak(fault_server, audio_files["speech"], "stage-killed", events, on_transcript=kill)
    assert killed
    assert not [e for e in events if e.kind == EventKind.ERROR]
    transcripts = [e for e in events if e.kind == EventKind.TRANSCRIPT]
    assert [t.segment_id for t in transcripts] == list(range(5))
    assert all(t.text for t in transcripts)
    assert events[-1].kind == EventKind.END
    assert not stream_threads()
    # the dead stub was replaced by a new one, and transcription works again
    deadline = time.monotonic() + 60
    while (
        not stub_pids(fault_server, "whisper") or stub_pids(fault_server, "whisper") == killed
    ) and time.monotonic() < deadline:
        time.sleep(0.5)
    [new] = stub_pids(fault_server, "whisper")
    assert new not in killed
    after = []
    speak(fault_server, audio_files["speech_b"], "after-kill", after)
    assert not [e for e in after if e.kind == EventKind.ERROR]
    assert "Bericht" in " ".join(e.text for e in after if e.kind == EventKind.TRANSCRIPT)
    assert sessions(fault_server)["stage-killed"] == "ended"
