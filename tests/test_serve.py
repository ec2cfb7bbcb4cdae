"""`livetranslate serve` as a user runs it: a short status on the terminal and Triton's log
in a file; the messages a client gets from it when pointed at the wrong port or a missing
session; and SIGTERM stopping it within seconds while a speaker streams, a speaker has gone
without ending its stream, and a viewer follows. A real server (slow)."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from livetranslate import protocol as P
from livetranslate.audio import read_audio
from livetranslate.store import SessionStore

from conftest import free_port
from raw import RawStream

CLI = [sys.executable, "-m", "livetranslate.cli"]
STOPS_WITHIN_S = 12.0  # seconds on a busy 2-core machine (it took 30 before: Triton's exit timeout ran out)


@pytest.mark.slow
def test_serve_status_messages_and_a_prompt_stop(tmp_path, audio_files):
    grpc, http, metrics = free_port(), free_port(), free_port()
    log = tmp_path / "triton.log"
    env = {**os.environ, "LIVETRANSLATE_DATA_DIR": str(tmp_path / "sessions")}
    began = time.monotonic()
    proc = subprocess.Popen(CLI + ["serve", "--grpc-port", str(grpc), "--http-port", str(http), "--metrics-port",
                                   str(metrics), "--llm", "gemma3-270m", "--log-file", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True)
    reader.start()
    try:
        while not any(line.startswith("Ctrl-C") for line in lines):
            assert proc.poll() is None, "\n".join(lines)
            assert time.monotonic() - began < 400, "\n".join(lines)
            time.sleep(0.2)
        ready_s = time.monotonic() - began
        url = f"127.0.0.1:{grpc}"
        # the short status: profile, where the log is, models ready, addresses, how to stop
        assert lines[0] == f"starting Triton: cpu profile, LLM gemma3-270m; its log: {log}"
        assert re.fullmatch(r"ready in \d+\.\d s: 9 of 9 models loaded", lines[1]), lines
        assert lines[2].split() [:2] == ["gRPC", url] and f"--url {url}" in lines[2]
        assert lines[3].split() == ["HTTP", f"http://127.0.0.1:{http}"]
        assert lines[4].split() == ["metrics", f"http://127.0.0.1:{metrics}/metrics"]
        assert lines[5] == "Ctrl-C (or SIGTERM) stops it" and len(lines) == 6
        text = log.read_text()
        assert "Started GRPCInferenceService" in text  # Triton's own log went to the file ...
        assert not [line for line in lines if "CUDA" in line or "I1" in line[:3]]  # ... and not to the terminal

        # what clients pointed at the wrong place are told
        def cli(*args):
            return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120, env=env)

        wrong = cli("sessions", "--url", f"127.0.0.1:{http}")
        assert wrong.returncode == 1 and wrong.stderr.startswith(
            f"Error: 127.0.0.1:{http} answers HTTP: it is Triton's HTTP (or metrics) port, not its gRPC port. "
            f"Point --url at the gRPC port"), wrong.stderr
        assert "TLS" not in wrong.stderr
        scheme = cli("sessions", "--url", f"http://{url}")
        assert scheme.returncode == 0 and "Misformatted" not in scheme.stderr, scheme.stderr
        missing = cli("watch", "no-such-session", "--url", url)
        assert missing.returncode == 1 and missing.stderr == (
            "Error: no session named 'no-such-session': `livetranslate sessions` lists the stored sessions\n")

        # then SIGTERM while `stream` streams, `watch` follows, and a raw client has gone without its end
        speaker = subprocess.Popen(CLI + ["stream", str(audio_files["speech"]), "--realtime", "--no-translate",
                                          "--session", "live", "--url", url, "--format", "jsonl"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        pcm, rate = read_audio(audio_files["speech_b"])
        gone = RawStream(url)
        gone.send({P.AUDIO: pcm[: rate // 10], **P.SessionOptions("gone", rate, translate=False).to_tensors()},
                  start=True)
        time.sleep(4.0)
        gone.close(cancel=True)
        viewer = subprocess.Popen(CLI + ["watch", "live", "--url", url], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(3.0)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        stop_s = time.monotonic() - stopping
        reader.join(5)
        print(f"serve: ready after {ready_s:.1f} s; SIGTERM to exit {stop_s:.1f} s")
        assert code == 0, lines
        assert lines[-2] == "stopping Triton ..." and re.fullmatch(r"stopped in \d+\.\d s", lines[-1]), lines
        assert stop_s < STOPS_WITHIN_S, (stop_s, lines)
        watched = viewer.communicate(timeout=30)
        assert viewer.returncode == 1 and "the server is shutting down" in watched[1], watched
        speaker.send_signal(signal.SIGINT)  # it goes on reconnecting; a second Ctrl-C quits at once
        time.sleep(1.0)
        speaker.send_signal(signal.SIGINT)
        spoken = speaker.communicate(timeout=30)
        said = spoken[1].splitlines()
        assert said[1].startswith("-- connection lost (the server ") and "StatusCode" not in spoken[1], said
        assert "shutting down" in said[1] or "ended this stream: it stopped or restarted" in said[1], said
        text = log.read_text()
        assert "Exit timeout expired" not in text
        assert not re.search(r"Found [1-9]\d* model versions that have in-flight", text)
        assert "successfully unloaded 'pipeline'" in text
        store = SessionStore(tmp_path / "sessions")
        for name in ("live", "gone"):  # both sessions ended cleanly, saying why
            assert store.info(name).state == "ended"
            assert "shutting down" in store.events(name)[-1].error
    finally:
        for process in [proc] + [p for p in (locals().get("speaker"), locals().get("viewer")) if p is not None]:
            if process.poll() is None:
                process.kill()
                process.wait()
