"""Oversized requests: what a client sending 200 MB tensors in a loop costs the server.

    .venv/bin/python bench/bench_oversized.py [--rounds 10] [--mb 200]

One server (cpu profile). A client sends `--rounds` requests to `pipeline`, each one AUDIO
tensor of `--mb` MB (far over the 30 s a chunk may carry), one after another. Reports each
answer, and the server's memory (tritonserver's RSS, its stub processes' RSS, Triton's
shared memory in /dev/shm) before, after the first round, after the last and after a pause;
then checks that a real speaker still gets transcripts.
"""

from __future__ import annotations

import argparse
import queue
import random
import sys
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from abuse import tensor  # noqa: E402
from common import machine, start_server, write_report  # noqa: E402

from livetranslate import protocol as P  # noqa: E402
from livetranslate.audio import chunks, read_audio  # noqa: E402
from livetranslate.client import PipelineClient  # noqa: E402
from livetranslate.protocol import Event, EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.samples import make_all  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(pid: int) -> dict:
    shm = sum(f.stat().st_blocks * 512 for f in Path("/dev/shm").glob("*triton*") if f.is_file()) / 2**20
    stubs = sum(rss_mb(child) for child in children(pid))
    return {"tritonserver_rss_mb": round(rss_mb(pid), 1), "stubs_rss_mb": round(stubs, 1), "dev_shm_mb": round(shm, 1)}


def send_huge(url: str, samples: int, cancel: bool) -> tuple[str, float]:
    """One request; the client then waits for its final response, or cancels the stream at
    once after the answer (`cancel`)."""
    client, answers, final = grpcclient.InferenceServerClient(url), queue.Queue(), queue.Queue()

    def callback(result, error):
        if (
            error is None
            and result.get_response().parameters["triton_final_response"].bool_param
            and not result.get_response().outputs
        ):
            final.put(True)
        else:
            answers.put(error or Event.from_tensors(result.as_numpy))

    client.start_stream(callback=callback)
    options = SessionOptions(f"huge-{random.random()}", translate=False, partials=False).to_tensors()
    began = time.monotonic()
    try:
        client.async_stream_infer(
            P.PIPELINE,
            [tensor(P.AUDIO, np.zeros(samples, np.int16))] + [tensor(k, v) for k, v in options.items()],
            sequence_id=random.randint(1, 2**62),
            sequence_start=True,
            sequence_end=True,
            enable_empty_final_response=True,
        )
        answer = answers.get(timeout=120)
        text = (answer.text or answer.error) if isinstance(answer, Event) else f"grpc error: {answer}"
        if not cancel:
            final.get(timeout=30)
        return text, time.monotonic() - began
    finally:
        client.stop_stream(cancel_requests=cancel)
        client.close()


MODES = {
    "waits": "waits for each request's final response, then closes its stream",
    "cancels": "cancels its stream as soon as it has the answer",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--mb", type=float, default=200)
    parser.add_argument("--triton-arg", action="append", default=[], help="an extra tritonserver argument")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="an environment variable for tritonserver"
    )
    parser.add_argument("--name", default="oversized", help="the report's name in bench/results")
    args = parser.parse_args()
    samples = int(args.mb * 2**20 / 2)
    audio = make_all(ROOT / ".cache" / "test-audio")["speech"]
    server = start_server(
        "bench-oversized",
        llm="gemma3-270m",
        extra_args=list(args.triton_arg),
        env=dict(item.split("=", 1) for item in args.env),
    )
    runs = {}
    try:
        pid = server.process.pid
        time.sleep(5)
        for mode in MODES:  # the waiting client first: what it leaves is the baseline of the other
            before = memory(pid)
            rounds = []
            for _ in range(args.rounds):
                text, took = send_huge(server.grpc_url, samples, cancel=mode == "cancels")
                rounds.append({"answer": text, "seconds": round(took, 2), **memory(pid)})
            time.sleep(10)
            runs[mode] = {"before": before, "rounds": rounds, "10 s later": memory(pid)}
        pcm, rate = read_audio(audio)
        with PipelineClient(server.grpc_url) as client:
            after = list(client.stream(chunks(pcm, rate // 10), SessionOptions("after-huge", rate, translate=False)))
        spoken = [e.text for e in after if e.kind == EventKind.TRANSCRIPT]
        ready = server.is_ready()
    finally:
        server.stop()
    data = {
        "machine": machine(),
        "rounds": args.rounds,
        "mb": args.mb,
        "samples": samples,
        "triton_args": args.triton_arg,
        "env": args.env,
        "runs": runs,
        "speaker_after": spoken,
        "ready_after": ready,
    }
    lines = []
    for mode, run in runs.items():
        rss = [r["tritonserver_rss_mb"] for r in run["rounds"]]
        lines.append(
            f"| {MODES[mode]} | {run['before']['tritonserver_rss_mb']:.0f} | {rss[0]:.0f} | "
            f"{rss[len(rss) // 2 - 1]:.0f} | {rss[-1]:.0f} | {run['10 s later']['tritonserver_rss_mb']:.0f} | "
            f"{run['10 s later']['stubs_rss_mb']:.0f} | {run['10 s later']['dev_shm_mb']:.0f} |"
        )
    answers = sorted({r["answer"] for run in runs.values() for r in run["rounds"]})
    seconds = [r["seconds"] for run in runs.values() for r in run["rounds"]]
    half = args.rounds // 2
    md = f"""# Oversized requests

`.venv/bin/python bench/bench_oversized.py --rounds {args.rounds} --mb {args.mb:g}{"".join(" --triton-arg=" + a for a in args.triton_arg)}{"".join(" --env " + e for e in args.env)}`
({machine()["cpus"]} CPUs, {machine()["date"]}). One server; a client sends {args.rounds} requests to `pipeline`
one after another, each one AUDIO tensor of {args.mb:g} MB ({samples / 16000 / 60:.0f} min of 16 kHz audio; a chunk
may carry 30 s), first as a client that waits for each answer, then as one that cancels its stream at
once.

| the client | tritonserver RSS before (MB) | after round 1 | after round {half} | after round {args.rounds} | 10 s later | stubs' RSS then | Triton's /dev/shm then |
|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

- Every answer: {answers} (each in {min(seconds):.1f}-{max(seconds):.1f} s).
- A real speaker afterwards: {len(spoken)} transcripts; server ready: {ready}.
- Triton 2.51's gRPC front end has no message size limit (it takes up to 2 GB), so each request is
  read whole into tritonserver's memory and copied into the `pipeline` stub's shared memory before
  the pipeline refuses it; the stub's shared memory keeps the size of the largest request.
What tuning saw: no recording. The requests are synthetic 200 MB tensors of zeros; the launcher's
`--grpc-infer-allocation-pool-size=0` was chosen on these runs (the closing check with a speaker
uses the espeak-ng test sample). No speech figure depends on it.
"""
    write_report(args.name, data, md)


if __name__ == "__main__":
    main()
