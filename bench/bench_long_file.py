"""Memory while a long file is streamed as fast as the server takes it (no --realtime): the
client paces itself on the server's replies, so both sides should stay flat.

    .venv/bin/python bench/bench_long_file.py [--minutes 60] [--translate]

The file is the bench recording repeated to the length asked for. Every 5 s the resident
memory of the server's process tree (tritonserver and every model's stub) and of this
client is sampled; the report gives them over time and the time the stream took.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine, start_server, write_report  # noqa: E402

from livetranslate.audio import chunks, read_audio  # noqa: E402
from livetranslate.client import PipelineClient, StreamStats  # noqa: E402
from livetranslate.protocol import EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.samples import make_bench_recording  # noqa: E402


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    pids = [str(pid)]
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in out:
        pids.append(child)
        pids += subprocess.run(["pgrep", "-P", child], capture_output=True, text=True).stdout.split()
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def self_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def long_file(minutes: float) -> Path:
    path = DATA / f"long-{minutes:g}min.wav"
    if not path.exists():
        pcm, rate = read_audio(make_bench_recording(DATA))
        reps = int(np.ceil(minutes * 60 * rate / len(pcm)))
        sf.write(path, np.tile(pcm, reps)[: int(minutes * 60 * rate)], rate, subtype="PCM_16")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--translate", action="store_true")
    args = parser.parse_args()
    path = long_file(args.minutes)
    pcm, rate = read_audio(path)
    server = start_server("bench-long-file", llm="gemma3-270m")
    samples, done = [], threading.Event()
    stats = StreamStats()

    def sample():
        while not done.wait(5.0):
            samples.append(
                (
                    round(time.monotonic() - stats.started, 1),
                    round(stats.audio_s, 1),
                    round(tree_rss_mb(server.process.pid)),
                    round(self_rss_mb()),
                )
            )

    transcripts = errors = 0
    try:
        with PipelineClient(server.grpc_url) as client:
            threading.Thread(target=sample, daemon=True).start()
            options = SessionOptions("long-file", rate, "de", translate=args.translate, partials=False)
            for event in client.stream(chunks(pcm, rate // 10), options, stats=stats, idle_timeout_s=600):
                transcripts += event.kind == EventKind.TRANSCRIPT
                errors += event.kind == EventKind.ERROR or bool(event.error)
        done.set()
    finally:
        server.stop()
    took = stats.finished - stats.started
    server_mb = [s[2] for s in samples]
    client_mb = [s[3] for s in samples]
    tenth = max(1, len(samples) // 10)
    data = {
        "machine": machine(),
        "audio_s": round(len(pcm) / rate, 1),
        "took_s": round(took, 1),
        "translate": args.translate,
        "transcripts": transcripts,
        "errors": errors,
        "server_rss_mb": {
            "first_tenth_max": max(server_mb[:tenth]),
            "last_tenth_max": max(server_mb[-tenth:]),
            "max": max(server_mb),
        },
        "client_rss_mb": {
            "first_tenth_max": max(client_mb[:tenth]),
            "last_tenth_max": max(client_mb[-tenth:]),
            "max": max(client_mb),
        },
        "samples": samples,
    }
    rows = "\n".join(f"| {t:.0f} | {a:.0f} | {s} | {c} |" for t, a, s, c in samples[:: max(1, len(samples) // 20)])
    md = f"""# A long file streamed without --realtime: memory

`.venv/bin/python bench/bench_long_file.py --minutes {args.minutes:g}{" --translate" if args.translate else ""}`
({data["machine"]["cpus"]} CPUs, {data["machine"]["date"]}). The bench recording repeated to
{data["audio_s"] / 60:.0f} min, sent as fast as the server answers (the client keeps at most
20 s of audio unanswered), translation {"on" if args.translate else "off"}, partials off.

- The stream took {took / 60:.1f} min for {data["audio_s"] / 60:.0f} min of audio (RTF {took / data["audio_s"]:.2f}),
  {transcripts} transcripts, {errors} errors.
- Server (tritonserver and every model's stub), resident memory: {data["server_rss_mb"]["first_tenth_max"]} MB
  at most in the first tenth of the run, {data["server_rss_mb"]["last_tenth_max"]} MB in the last tenth,
  {data["server_rss_mb"]["max"]} MB peak.
- Client: {data["client_rss_mb"]["first_tenth_max"]} MB in the first tenth, {data["client_rss_mb"]["last_tenth_max"]} MB
  in the last, {data["client_rss_mb"]["max"]} MB peak.

| seconds | audio sent (s) | server MB | client MB |
|---|---|---|---|
{rows}
"""
    write_report("long_file", data, md)


if __name__ == "__main__":
    main()
