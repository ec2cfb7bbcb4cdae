"""`livetranslate serve`: time from start to ready, and from SIGTERM to exit, with nothing
connected and with the sequences a stopping server may still hold (a speaker streaming, a
speaker that went away without ending its stream, a viewer).

    python bench/bench_stop.py [--code DIR] [--label NAME] [--llm gemma3-270m] [--scenarios idle,speaker,...]

`--code DIR` runs the command from another checkout of the project (e.g. an older commit
unpacked with `git archive`), to compare; results go to bench/results/stop.md and .json
(merged by label)."""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, free_port  # noqa: E402

SCENARIOS = ("idle", "after-stream", "speaker", "viewer", "gone-speaker", "frozen-speaker")


class Raw:
    """A gRPC stream to `pipeline` (tritonclient), as any client."""

    def __init__(self, url: str):
        import tritonclient.grpc as grpcclient

        self.g = grpcclient
        self.client = grpcclient.InferenceServerClient(url)
        self.events: queue.Queue = queue.Queue()
        self.client.start_stream(callback=lambda result, error: self.events.put(error or result))
        self.sequence_id = random.randint(1, 2**62)

    def send(self, tensors: dict, start=False, end=False) -> None:
        inputs = []
        for name, value in tensors.items():
            dtype = "BYTES" if value.dtype == np.object_ else self.g.np_to_triton_dtype(value.dtype)
            tensor = self.g.InferInput(name, list(value.shape), dtype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        self.client.async_stream_infer(
            "pipeline", inputs, sequence_id=self.sequence_id, sequence_start=start, sequence_end=end
        )

    def drop(self) -> None:
        """Gone without ending its sequence (a crashed client, a dead network)."""
        self.client.stop_stream(cancel_requests=True)
        self.client.close()


def speech(seconds: float) -> np.ndarray:
    """German speech at 16 kHz."""
    from livetranslate.audio import float_to_pcm16, pcm16_to_float, read_audio, resample
    from livetranslate.quality.samples import make_all

    pcm, rate = read_audio(make_all(ROOT / ".cache" / "test-audio")["speech_b"])
    return float_to_pcm16(resample(pcm16_to_float(pcm), rate))[: int(seconds * 16000)]


def open_speaker(url: str, session: str, seconds: float = 3.0) -> Raw:
    from livetranslate.protocol import SessionOptions

    raw = Raw(url)
    pcm = speech(seconds)
    raw.send({"AUDIO": pcm[:1600], **SessionOptions(session, 16000, translate=False).to_tensors()}, start=True)
    for i in range(1600, len(pcm), 1600):
        raw.send({"AUDIO": pcm[i : i + 1600]})
    return raw


def run(code: Path, scenario: str, llm: str) -> dict:
    grpc, http, metrics = free_port(), free_port(), free_port()
    url = f"127.0.0.1:{grpc}"
    data = Path(tempfile.mkdtemp(prefix="livetranslate-stopbench-"))
    log = data / "serve.out"
    env = {**os.environ, "PYTHONPATH": str(code), "LIVETRANSLATE_DATA_DIR": str(data / "sessions")}
    cmd = [
        sys.executable,
        "-m",
        "livetranslate.cli",
        "serve",
        "--grpc-port",
        str(grpc),
        "--http-port",
        str(http),
        "--metrics-port",
        str(metrics),
        "--llm",
        llm,
    ]
    help_text = subprocess.run(cmd[:4] + ["--help"], env=env, capture_output=True, text=True, cwd=code).stdout
    if "--log-file" in help_text:
        cmd += ["--log-file", str(data / "triton.log")]
    began = time.monotonic()
    out = open(log, "w")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=code)
    ready_s = None
    while proc.poll() is None and time.monotonic() - began < 600:
        text = log.read_text(errors="replace")
        if re.search(r"ready in [\d.]+ s", text):
            ready_s = time.monotonic() - began
            break
        time.sleep(0.2)
    if ready_s is None:
        proc.kill()
        raise RuntimeError(f"serve did not get ready:\n{log.read_text()[-3000:]}")
    try:
        return _scenario(proc, out, data, log, url, scenario, ready_s)
    finally:
        if proc.poll() is None:  # a failed run: the launcher stops its Triton (a kill would orphan it)
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)


def _scenario(proc, out, data: Path, log: Path, url: str, scenario: str, ready_s: float) -> dict:
    held, clients = [], []
    if scenario == "after-stream":
        from livetranslate.audio import chunks
        from livetranslate.client import PipelineClient
        from livetranslate.protocol import SessionOptions

        with PipelineClient(url) as client:
            for _ in client.stream(chunks(speech(4.0), 1600), SessionOptions("done", 16000, translate=False)):
                pass
    elif scenario in ("speaker", "viewer"):  # `livetranslate stream` (and `watch`), as users run them
        from livetranslate.quality.samples import make_all

        talk = make_all(ROOT / ".cache" / "test-audio")["speech"]
        cli = [sys.executable, "-m", "livetranslate.cli"]
        clients.append(
            subprocess.Popen(
                cli
                + [
                    "stream",
                    str(talk),
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
                cwd=ROOT,
            )
        )
        time.sleep(5.0)  # the stream is under way: its vad (and enhance) sequences are open
        if scenario == "viewer":
            clients.append(
                subprocess.Popen(
                    cli + ["watch", "live", "--url", url, "--format", "jsonl"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
            )
            time.sleep(2.0)
    elif scenario in ("gone-speaker", "frozen-speaker"):  # a raw client: gone, or connected and silent
        speaker = open_speaker(url, "live")
        held.append(speaker)
        time.sleep(3.0)
        if scenario == "gone-speaker":
            speaker.drop()
            held.clear()
    terminated = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code_ = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        code_ = "killed after 120 s"
    stop_s = time.monotonic() - terminated
    out.close()
    told = []
    for client in clients:  # what `stream` and `watch` printed (they go on reconnecting: stopped here)
        time.sleep(1.0)
        client.send_signal(signal.SIGINT)
        try:
            _, err = client.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            client.kill()
            _, err = client.communicate()
        told += [
            line.strip()[:120]
            for line in err.splitlines()
            if "shutting down" in line or "connection lost" in line or "ended this stream" in line
        ][:2]
    for raw in held:  # what the clients still connected were told
        while True:
            try:
                item = raw.events.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, Exception):
                error = item.as_numpy("ERROR")
                if error is not None and error.size and error.reshape(-1)[0]:
                    told.append(error.reshape(-1)[0].decode())
        try:
            raw.drop()
        except Exception:
            pass
    triton_log = (data / "triton.log") if (data / "triton.log").exists() else log
    text = triton_log.read_text(errors="replace")
    return {
        "scenario": scenario,
        "ready_s": round(ready_s, 1),
        "stop_s": round(stop_s, 1),
        "exit_code": code_,
        "exit_timeout_expired": "Exit timeout expired" in text or "Timeout 1:" in text,
        "clients_told": sorted(set(told)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=ROOT)
    parser.add_argument("--label", default="this branch")
    parser.add_argument("--llm", default="gemma3-270m")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    rows = []
    for scenario in args.scenarios.split(","):
        row = run(args.code.resolve(), scenario, args.llm)
        print(json.dumps(row), flush=True)
        rows.append({**row, "label": args.label, "llm": args.llm})
    RESULTS.mkdir(parents=True, exist_ok=True)
    store = RESULTS / "stop.json"
    previous = json.loads(store.read_text()) if store.exists() else []
    keep = [
        r
        for r in previous
        if not (r["label"] == args.label and r["llm"] == args.llm and r["scenario"] in {x["scenario"] for x in rows})
    ]
    everything = keep + rows
    store.write_text(json.dumps(everything, indent=1) + "\n")
    lines = [
        "# `serve`: start-up and stop",
        "",
        "`bench/bench_stop.py`: `livetranslate serve` started as a user starts it, ready = the line",
        "that says so; then SIGTERM, and the time until the command has exited. Scenarios: nothing",
        "connected (`idle`), after one finished stream, while `livetranslate stream` streams a file in real",
        "time (`speaker`), the same and `livetranslate watch` following it (`viewer`), after a raw client",
        "vanished without ending its stream (`gone-speaker`), and a raw client that stays connected without",
        "sending (`frozen-speaker`: Triton cannot unload `pipeline` while it holds its stream open).",
        "This 2-core machine is shared: compare rows of one run, not across days.",
        "",
        "| code | LLM | scenario | start to ready (s) | SIGTERM to exit (s) | exit code | Triton's exit timeout ran out | what connected clients were told |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in everything:
        lines.append(
            f"| {r['label']} | {r['llm']} | {r['scenario']} | {r['ready_s']} | {r['stop_s']} | {r['exit_code']} "
            f"| {'yes' if r['exit_timeout_expired'] else 'no'} | {'; '.join(r['clients_told']) or '-'} |"
        )
    (RESULTS / "stop.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
