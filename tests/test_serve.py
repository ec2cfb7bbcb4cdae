"""`livetranslate serve` as a user runs it: a short status on the terminal and Triton's log
in a file; the messages a client gets from it when pointed at the wrong port or a missing
session; SIGTERM stopping it within seconds while a speaker streams, a speaker has gone
without ending its stream, and a viewer follows; and the drain a load balancer sees: not
ready at once, newcomers refused, the live stream served through the grace. A real server
(slow)."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import free_port
from raw import RawStream

from livetranslate import protocol as P
from livetranslate.audio import read_audio
from livetranslate.launcher import stop_bound_s
from livetranslate.store import SessionStore

CLI = [sys.executable, "-m", "livetranslate.cli"]
# seconds on a busy 2-core machine past the drain's grace, which a live speaker waits out
STOPS_WITHIN_S = P.DEFAULT_DRAIN_GRACE_S + 12.0


@pytest.mark.slow
def test_serve_status_messages_and_a_prompt_stop(tmp_path, audio_files):
    grpc, http, metrics = free_port(), free_port(), free_port()
    log = tmp_path / "triton.log"
    env = {**os.environ, "LIVETRANSLATE_DATA_DIR": str(tmp_path / "sessions")}
    began = time.monotonic()
    proc = subprocess.Popen(
        CLI
        + [
            "serve",
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(http),
            "--metrics-port",
            str(metrics),
            "--llm",
            "gemma3-270m",
            "--log-file",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
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
        assert re.fullmatch(r"ready in \d+\.\d s: 10 of 10 models loaded", lines[1]), lines
        assert lines[2].split()[:2] == ["gRPC", url] and f"--url {url}" in lines[2]
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
            f"Point --url at the gRPC port"
        ), wrong.stderr
        assert "TLS" not in wrong.stderr
        scheme = cli("sessions", "--url", f"http://{url}")
        assert scheme.returncode == 0 and "Misformatted" not in scheme.stderr, scheme.stderr
        missing = cli("watch", "no-such-session", "--url", url)
        assert missing.returncode == 1 and missing.stderr == (
            "Error: no session named 'no-such-session': `livetranslate sessions` lists the stored sessions\n"
        )

        # then SIGTERM while `stream` streams, `watch` follows, and a raw client has gone without its end
        speaker = subprocess.Popen(
            CLI
            + [
                "stream",
                str(audio_files["speech"]),
                "--realtime",
                "--no-translate",
                "--session",
                "live",
                "--url",
                url,
                "--format",
                "jsonl",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        pcm, rate = read_audio(audio_files["speech_b"])
        gone = RawStream(url)
        gone.send(
            {P.AUDIO: pcm[: rate // 10], **P.SessionOptions("gone", rate, translate=False).to_tensors()}, start=True
        )
        time.sleep(4.0)
        gone.close(cancel=True)
        viewer = subprocess.Popen(
            CLI + ["watch", "live", "--url", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        time.sleep(3.0)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        stop_s = time.monotonic() - stopping
        reader.join(5)
        print(f"serve: ready after {ready_s:.1f} s; SIGTERM to exit {stop_s:.1f} s")
        assert code == 0, lines
        assert re.fullmatch(r"stopping Triton \(within \d+ s\) \.\.\.", lines[-3]), lines
        assert lines[-2].startswith("  refusing new speakers and viewers; ") and "Ctrl-C again" in lines[-2], lines
        assert re.fullmatch(r"stopped in \d+\.\d s", lines[-1]), lines
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


def _health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


GRACE_S = 12.0


@pytest.mark.slow
def test_sigterm_refuses_newcomers_at_once_and_serves_the_live_stream_through_the_grace(tmp_path, audio_files):
    """What a load balancer and the clients see of a replica told to stop: /ready goes 503 at
    once (Triton's own readiness would not), a new speaker and a new viewer are refused with
    the clear message, the live speaker keeps getting transcripts through the grace, then it
    is ended and the server exits within stop_bound_s."""
    grpc, http, metrics, health = free_port(), free_port(), free_port(), free_port()
    env = {**os.environ, "LIVETRANSLATE_DATA_DIR": str(tmp_path / "sessions")}
    proc = subprocess.Popen(
        CLI
        + [
            "serve",
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(http),
            "--metrics-port",
            str(metrics),
            "--health-port",
            str(health),
            "--drain-grace-s",
            str(GRACE_S),
            "--llm",
            "gemma3-270m",
            "--log-file",
            str(tmp_path / "triton.log"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(
        target=lambda: lines.extend((time.monotonic(), line.rstrip("\n")) for line in proc.stderr), daemon=True
    )
    reader.start()
    said = lambda: "\n".join(line for _, line in lines)  # noqa: E731
    url, ready = f"127.0.0.1:{grpc}", f"http://127.0.0.1:{health}/ready"
    sending = threading.Event()
    try:
        began = time.monotonic()
        while not any(line.startswith("Ctrl-C") for _, line in lines):
            assert proc.poll() is None and time.monotonic() - began < 400, said()
            time.sleep(0.2)
        assert _health(ready) == (200, "ready\n")
        assert _health(f"http://127.0.0.1:{health}/live") == (200, "live\n")
        assert f"  health   http://127.0.0.1:{health}/ready" in said()

        # a speaker in real time: the meeting twice over, longer than the grace
        pcm, rate = read_audio(audio_files["speech"])
        pcm = np.concatenate([pcm, pcm])
        speaker = RawStream(url)
        arrived: list[tuple[float, P.Event]] = []

        def speak():
            chunk, start = rate // 10, time.monotonic()
            for i, at in enumerate(range(0, len(pcm), chunk)):
                if not sending.is_set():
                    return
                tensors = {P.AUDIO: pcm[at : at + chunk]}
                if i == 0:
                    tensors.update(P.SessionOptions("live", rate, translate=False).to_tensors())
                try:
                    speaker.send(tensors, start=i == 0)
                except Exception:  # the server has gone: the stream is over
                    return
                time.sleep(max(0.0, start + (at + chunk) / rate - time.monotonic()))

        def listen():
            while True:
                try:
                    event = speaker.next(timeout=120)
                except Exception:
                    return
                arrived.append((time.monotonic(), event))
                if isinstance(event, Exception) or event.kind in (P.EventKind.END, P.EventKind.ERROR):
                    # as a client does: this stream is over, it stops sending and closes it
                    # (Triton 2.51 does not unload a model while a finished stream stays open)
                    sending.clear()
                    speaker.close()
                    return

        sending.set()
        threads = [threading.Thread(target=speak, daemon=True), threading.Thread(target=listen, daemon=True)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 90
        while not [e for _, e in arrived if getattr(e, "kind", None) == P.EventKind.TRANSCRIPT]:
            assert time.monotonic() < deadline, arrived
            time.sleep(0.2)

        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        while _health(ready)[0] != 503:
            assert time.monotonic() - stopping < 1.0, "still ready a second after SIGTERM"
            time.sleep(0.02)
        assert _health(ready) == (503, "draining: this server is shutting down\n")
        while not any("refusing new speakers and viewers" in line for _, line in lines):
            assert time.monotonic() - stopping < 10, said()
            time.sleep(0.05)
        refusal = "the server is shutting down: connect to another server, or try again in a moment"
        newcomer = RawStream(url)
        newcomer.send({P.AUDIO: pcm[: rate // 10], **P.SessionOptions("newcomer", rate).to_tensors()}, start=True)
        answer = newcomer.next(timeout=30)
        newcomer.close()
        assert (answer.kind, answer.error) == (P.EventKind.END, refusal), answer
        viewer = RawStream(url)
        viewer.send({P.SUBSCRIBE: np.array([b"live"], dtype=np.object_)}, start=True, end=True)
        answer = viewer.next(timeout=30)
        viewer.close()
        assert (answer.kind, answer.error) == (P.EventKind.END, refusal), answer

        code = proc.wait(stop_bound_s(GRACE_S, 10) + 10)
        stop_s = time.monotonic() - stopping
        sending.clear()
        reader.join(5)
        print(f"SIGTERM to exit {stop_s:.1f} s with a {GRACE_S:.0f} s grace")
        assert code == 0, said()
        # the live stream was served through the grace: transcripts arrived well after SIGTERM
        during = [
            e
            for at, e in arrived
            if stopping + 2.0 < at <= stopping + GRACE_S and getattr(e, "kind", None) == P.EventKind.TRANSCRIPT
        ]
        assert during, [(round(at - stopping, 1), e) for at, e in arrived]
        assert not [
            e
            for at, e in arrived
            if at < stopping + GRACE_S - 1.0  # (after it: "this stream has ended")
            and isinstance(e, P.Event)
            and e.kind == P.EventKind.ERROR
        ]
        text = (tmp_path / "triton.log").read_text()
        assert "Exit timeout expired" not in text and "successfully unloaded 'pipeline'" in text
        assert GRACE_S - 1.0 <= stop_s < stop_bound_s(GRACE_S, 10), (stop_s, said())
        assert re.search(r"refusing new speakers and viewers; 1 stream\(s\) live, ending them within 12 s", said())
        # then it was ended as before: its session stored an `end` saying why
        store = SessionStore(tmp_path / "sessions")
        assert store.info("live").state == "ended" and "shutting down" in store.events("live")[-1].error
        for thread in threads:
            thread.join(10)
    finally:
        sending.clear()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _child(pid: int, name: str) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                comm, ppid = stat.split(" (", 1)[1].rsplit(")", 1)[0], int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and comm == name:
                return int(entry)
    return None


@pytest.mark.slow
def test_serve_starts_triton_again_when_it_dies_and_the_session_goes_on(tmp_path, audio_files):
    """Triton 2.51's gRPC front end can abort (a race when a client cancels a stream): `serve`
    starts it again, and a session goes on where it was."""
    from livetranslate.audio import chunks
    from livetranslate.client import PipelineClient
    from livetranslate.protocol import EventKind, SessionOptions

    grpc, http, metrics = free_port(), free_port(), free_port()
    env = {**os.environ, "LIVETRANSLATE_DATA_DIR": str(tmp_path / "sessions")}
    proc = subprocess.Popen(
        CLI
        + [
            "serve",
            "--grpc-port",
            str(grpc),
            "--http-port",
            str(http),
            "--metrics-port",
            str(metrics),
            "--llm",
            "gemma3-270m",
            "--log-file",
            str(tmp_path / "triton.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True).start()

    def wait_for(condition, what):
        began = time.monotonic()
        while not condition():
            assert proc.poll() is None and time.monotonic() - began < 400, (what, lines)
            time.sleep(0.2)

    pcm, rate = read_audio(audio_files["speech"])

    def speak(part):
        with PipelineClient(f"127.0.0.1:{grpc}") as client:
            return list(client.stream(chunks(part, rate // 10), SessionOptions("restarted", rate, translate=False)))

    try:
        wait_for(lambda: any(line.startswith("Ctrl-C") for line in lines), "ready")
        before = [e for e in speak(pcm[: rate * 10]) if e.kind == EventKind.TRANSCRIPT]
        triton = _child(proc.pid, "tritonserver")
        assert before and triton
        os.kill(triton, signal.SIGABRT)  # as its gRPC front end's assertion does
        wait_for(lambda: len([line for line in lines if line.startswith("ready in")]) == 2, "ready again")
        assert any(line.startswith("tritonserver exited with code -6 unexpectedly") for line in lines), lines
        assert any(line.startswith("restarting Triton (1 of at most 5 restarts in 10 minutes)") for line in lines)
        with pytest.raises(ProcessLookupError):  # none of the dead Triton's stub processes lives on
            os.killpg(triton, 0)
        after = speak(pcm[rate * 10 :])
        assert after[-1].kind == EventKind.END and not after[-1].error
        later = [e for e in after if e.kind == EventKind.TRANSCRIPT]
        assert later and later[0].segment_id > before[-1].segment_id
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
