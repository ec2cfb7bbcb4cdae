"""Capture from PulseAudio, reconnect after a server restart, subtitle files that survive
kill -9, and TLS + API key: real daemons, real server, real client processes."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import srt
import webvtt
from conftest import ARTIFACTS, free_port

from livetranslate.launcher import ServerOptions, TritonServer
from livetranslate.present.cues import cues_for
from livetranslate.quality.samples import SENTENCES_DE, make_speech

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def texts(events, kind="transcript"):
    return " ".join(e["text"] for e in events if e["kind"] == kind)


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "de_long.wav"
    make_speech(SENTENCES_DE, path, pause_s=1.0)
    return path


# --- PulseAudio ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    """A private PulseAudio daemon (no hardware), its environment for clients."""
    runtime = tmp_path_factory.mktemp("pulse")
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(runtime),
        "PULSE_SERVER": f"unix:{runtime}/pulse/native",
    }
    daemon = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "--disallow-exit",
            "--load=module-native-protocol-unix",
            "--load=module-null-sink sink_name=silence",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(ARTIFACTS / "pulseaudio.log", "wb"),
    )
    wait_for(lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0, 20, "pulseaudio")
    yield env
    daemon.terminate()
    daemon.wait(10)


def capture_run(server, pulse, source, audio, tmp_path, sink):
    out = tmp_path / f"{source.replace(':', '_')}.jsonl"
    client = subprocess.Popen(
        CLI + ["stream", source, "--url", server.grpc_url, "--no-translate", "--format", "jsonl", "--out", str(out)],
        env=pulse,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    assert client.poll() is None, client.stderr.read()
    subprocess.run(["paplay", f"--device={sink}", str(audio)], env=pulse, check=True, timeout=120)
    time.sleep(1.5)
    client.send_signal(signal.SIGINT)  # Ctrl-C: flush the open utterance, then end
    _, err = client.communicate(timeout=60)
    # interrupted, as the shell counts it (128 + SIGINT), with what was done in one line
    assert client.returncode == 130, err
    assert err.splitlines()[-1].startswith("session ") and "(livetranslate export " in err, err
    events = read_jsonl(out)
    assert events[-1]["kind"] == "end", err
    return events


def test_capture_a_meeting_sink_through_pulseaudio(server, pulse, audio_files, tmp_path):
    created = subprocess.run(CLI + ["sink", "create", "lt_meeting"], env=pulse, capture_output=True, text=True)
    assert created.returncode == 0 and "pulse:lt_meeting.monitor" in created.stdout, created.stderr
    listed = subprocess.run(CLI + ["devices"], env=pulse, capture_output=True, text=True).stdout
    assert "pulse:lt_meeting.monitor" in listed
    events = capture_run(server, pulse, "pulse:lt_meeting.monitor", audio_files["speech"], tmp_path, "lt_meeting")
    heard = texts(events)
    assert "Projekt" in heard and "Kunden" in heard, heard
    removed = subprocess.run(CLI + ["sink", "remove", "lt_meeting"], env=pulse, capture_output=True, text=True)
    assert removed.returncode == 0


def test_microphone_through_portaudio(server, pulse, audio_files, tmp_path):
    """mic: goes through PortAudio's ALSA 'pulse' device; the daemon's default source is
    pointed at a null sink's monitor, so the 'microphone' hears what is played there."""
    subprocess.run(CLI + ["sink", "create", "lt_mic"], env=pulse, check=True, capture_output=True)
    subprocess.run(["pactl", "set-default-source", "lt_mic.monitor"], env=pulse, check=True)
    events = capture_run(server, pulse, "mic:pulse", audio_files["speech_b"], tmp_path, "lt_mic")
    assert "Bericht" in texts(events), texts(events)


def test_pulse_source_errors_are_plain(server, pulse):
    out = subprocess.run(
        CLI + ["stream", "pulse:no_such_source", "--url", server.grpc_url],
        env=pulse,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "cannot record from PulseAudio source 'no_such_source'" in out.stderr


# --- resilience and subtitles ---------------------------------------------------------------
def test_client_reconnects_after_a_server_restart(long_speech, tmp_path):
    ports = dict(grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    options = ServerOptions(host="127.0.0.1", llm="gemma3-270m", data_dir=tmp_path / "sessions", **ports)
    log = ARTIFACTS / "triton-restart.log"
    server = TritonServer(options, log_file=log).__enter__()
    out, srt_path = tmp_path / "events.jsonl", tmp_path / "live.srt"
    client = subprocess.Popen(
        CLI
        + [
            "stream",
            str(long_speech),
            "--realtime",
            "--url",
            server.grpc_url,
            "--no-translate",
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--srt",
            str(srt_path),
            "--session",
            "standup",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any(e["kind"] == "transcript" for e in read_jsonl(out)), 60, "a first transcript")
        server.kill()  # kill -9: server and its stubs
        time.sleep(2)
        server = TritonServer(options, log_file=log).__enter__()
        _, err = client.communicate(timeout=180)
    finally:
        client.kill()
        server.stop()
    events = read_jsonl(out)
    assert client.returncode == 0, err
    assert "connection lost" in err and "connected to" in err
    transcripts = [e for e in events if e["kind"] == "transcript"]
    ids = [e["segment_id"] for e in transcripts]
    assert ids == sorted(set(ids)) and ids[0] == 0  # numbering continues, nothing repeated
    starts = [e["start_s"] for e in transcripts]
    assert starts == sorted(starts)  # the session clock goes on across the restart
    assert "Aufmerksamkeit" in texts(events)  # the last sentence, spoken after the restart
    assert events[-1]["kind"] == "end"
    made = [c for e in transcripts for c in cues_for(e["text"], e["start_s"], e["end_s"])]
    assert [c.content for c in srt.parse(srt_path.read_text())] == [c.text for c in made]


def test_subtitles_survive_kill_9_of_the_client(server, long_speech, tmp_path):
    srt_path, vtt_path, out = tmp_path / "s.srt", tmp_path / "s.vtt", tmp_path / "s.jsonl"
    client = subprocess.Popen(
        CLI
        + [
            "stream",
            str(long_speech),
            "--realtime",
            "--url",
            server.grpc_url,
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--srt",
            str(srt_path),
            "--vtt",
            str(vtt_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: sum(e["kind"] == "translation" for e in read_jsonl(out)) >= 2, 90, "two translations")
    client.kill()
    client.wait()
    cues = list(srt.parse(srt_path.read_text()))
    captions = webvtt.read(str(vtt_path)).captions
    translations = [e for e in read_jsonl(out) if e["kind"] == "translation" and not e["error"]]
    made = [c for e in translations for c in cues_for(e["text"], e["start_s"], e["end_s"])]
    assert len(cues) == len(captions) == len(made) >= 2
    for cue, caption, expected in zip(cues, captions, made):
        assert cue.content == caption.text == expected.text
        assert abs(cue.start.total_seconds() - expected.start_s) < 0.002


# --- TLS and API key ----------------------------------------------------------------------
def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=livetranslate test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"
    )
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        "-out",
        "server.pem",
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


def test_tls_and_api_key(audio_files, tmp_path):
    ca, cert, key = make_certificates(tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        tls_cert=cert,
        tls_key=key,
        api_key="s3cret",
        data_dir=tmp_path / "sessions",
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-secure.log"):
        url = f"localhost:{options.grpc_port}"
        base = CLI + ["stream", str(audio_files["speech_b"]), "--url", url, "--no-translate", "--no-reconnect"]
        runs = iter(range(100))

        def run(*extra, env=None):
            # each run its own session: a stored session is resumed, not what is tested here
            return subprocess.run(
                base + ["--session", f"secure-{next(runs)}", *extra],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, **(env or {})},
            )

        key_file, wrong_file = tmp_path / "key", tmp_path / "wrong"
        key_file.write_text("s3cret\n")
        wrong_file.write_text("wrong")
        ok = run("--tls", "--ca", str(ca), "--api-key-file", str(key_file))
        assert ok.returncode == 0 and "Bericht" in ok.stdout, ok.stderr
        from_env = run("--tls", "--ca", str(ca), env={"LIVETRANSLATE_API_KEY": "s3cret"})
        assert from_env.returncode == 0, from_env.stderr
        for refused in (
            run("--tls", "--ca", str(ca)),
            run("--tls", "--ca", str(ca), "--api-key-file", str(wrong_file)),
        ):
            assert refused.returncode != 0 and "needs an API key" in refused.stderr, refused.stderr
            assert "StatusCode" not in refused.stderr and "Traceback" not in refused.stderr
        plain = run("--api-key-file", str(key_file))
        assert plain.returncode != 0 and "uses TLS: connect with --tls" in plain.stderr, plain.stderr
        assert "StatusCode" not in plain.stderr and "Traceback" not in plain.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{options.http_port}/v2/health/ready") as health:
            assert health.status == 200  # probes need no key
