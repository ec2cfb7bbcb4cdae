"""What abuse costs a live speaker, and where "server full" starts.

    .venv/bin/python bench/bench_abuse.py [--seconds 120]

One server, one run: a real-time stream of the bench recording alone, then the same stream
while every attack of bench/abuse.py runs against the server (direct llm and whisper loops,
a 64 MB tensor, more idle streams than the server takes, 1000 unknown subscribes). Reports
final-transcript latency p50/p95 both ways and their ratio, and how many speaker streams the
server takes before it answers "server full" (and how fast it answers).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from abuse import Attack, tensor  # noqa: E402
from common import DATA, machine, percentiles, start_server, stream_timed, write_report  # noqa: E402

import tritonclient.grpc as grpcclient  # noqa: E402

from livetranslate import protocol as P  # noqa: E402
from livetranslate.protocol import Event, EventKind, SessionOptions  # noqa: E402
from livetranslate.samples import make_bench_recording  # noqa: E402


def finals_ms(received) -> list[float]:
    return [e.latency_ms for _, e in received if e.kind == EventKind.TRANSCRIPT]


def full_point(url: str, most: int = 64) -> dict:
    """Opens idle speaker streams one by one until the server refuses one; then ends them."""
    import queue

    client, answers = grpcclient.InferenceServerClient(url), queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put(error or Event.from_tensors(result.as_numpy)))
    ids, refused_at, refusal_s = [], None, None
    for n in range(1, most + 1):
        sequence_id = random.randint(1, 2**62)
        options = SessionOptions(f"full-{n}", translate=False, partials=False).to_tensors()
        began = time.monotonic()
        client.async_stream_infer(P.PIPELINE, [tensor(P.AUDIO, np.zeros(1600, np.int16))]
                                  + [tensor(k, v) for k, v in options.items()],
                                  sequence_id=sequence_id, sequence_start=True)
        ids.append(sequence_id)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                item = answers.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, Event) and item.kind == EventKind.END and "server full" in item.error:
                refused_at, refusal_s = n, time.monotonic() - began
                break
        if refused_at:
            break
    for sequence_id in ids:
        client.async_stream_infer(P.PIPELINE, [tensor(P.AUDIO, np.zeros(0, np.int16))],
                                  sequence_id=sequence_id, sequence_end=True)
    time.sleep(2.0)
    client.stop_stream()
    client.close()
    return {"refused_at_stream": refused_at, "refusal_ms": round(refusal_s * 1000, 1) if refusal_s else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0, help="of the bench recording, per run")
    args = parser.parse_args()
    path = make_bench_recording(DATA)
    server = start_server("bench-abuse", llm="gemma3-270m")
    try:
        calm, _, audio_s = stream_timed(server.grpc_url, path, realtime=True, session="calm", translate=False,
                                        seconds=args.seconds)
        # the speaker holds its place first; then every attack starts beside it
        result: dict = {}
        speaker = threading.Thread(target=lambda: result.update(attacked=stream_timed(
            server.grpc_url, path, realtime=True, session="attacked", translate=False, seconds=args.seconds)[0]))
        speaker.start()
        time.sleep(1.0)
        attack = Attack(server.grpc_url, idle_streams=12).start()
        speaker.join()
        attacked = result["attacked"]
        tally = attack.stop().outcomes
        full = full_point(server.grpc_url)
        ready = server.is_ready()
    finally:
        server.stop()
    calm_ms, attacked_ms = percentiles(finals_ms(calm)), percentiles(finals_ms(attacked))
    same_text = [e.text for _, e in calm if e.kind == EventKind.TRANSCRIPT] == \
                [e.text for _, e in attacked if e.kind == EventKind.TRANSCRIPT]
    data = {"machine": machine(), "audio_s": round(audio_s, 1), "latency_ms": {"calm": calm_ms, "attacked": attacked_ms},
            "p95_ratio": round(attacked_ms["p95"] / calm_ms["p95"], 2),
            "p50_ratio": round(attacked_ms["p50"] / calm_ms["p50"], 2),
            "same_text": same_text, "attacks": tally, "server_full": full, "ready_after": ready}
    md = f"""# Abuse beside a live speaker

`.venv/bin/python bench/bench_abuse.py --seconds {args.seconds:g}` ({data['machine']['cpus']} CPUs,
{data['machine']['date']}). One server; the first {audio_s:.0f} s of the bench recording streamed in real
time (partials on, translation off), once alone and once while every attack of `bench/abuse.py` runs.

| final-transcript latency | alone | under attack | ratio |
|---|---|---|---|
| p50 | {calm_ms['p50']:.0f} ms | {attacked_ms['p50']:.0f} ms | {data['p50_ratio']} |
| p95 | {calm_ms['p95']:.0f} ms | {attacked_ms['p95']:.0f} ms | {data['p95_ratio']} |

- Transcripts identical alone and under attack: {same_text}.
- What the attacks got: {', '.join(f"{k}: {v}" for k, v in tally.items())}.
- "server full" came at speaker stream {full['refused_at_stream']} (the configured `max_streams` + 1),
  {full['refusal_ms']} ms after that stream's first request. Server ready afterwards: {ready}.
"""
    write_report("abuse", data, md)


if __name__ == "__main__":
    main()
