"""Figures: latency a viewer adds over the speaker's own stream, and how many
viewers of one session the machine serves while the speaker stays real-time.

For N viewers (subscribed right after the session starts) the speaker streams a 24 s file
in real time; for every event both receive, viewer delay = viewer receive time - speaker
receive time. The speaker stays real-time while its transcript latency p95 stays within
SPEAKER_SLACK of its own p95 with no viewer (measured first, in the same run: the machine's
speed varies from day to day) and every viewer gets every event; the levels go up until one
of them fails.

    .venv/bin/python bench/bench_viewers.py
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine, percentiles, start_server, write_report  # noqa: E402

from livetranslate.audio import chunks, read_audio  # noqa: E402
from livetranslate.client import PipelineClient  # noqa: E402
from livetranslate.protocol import EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.samples import make_all  # noqa: E402

LEVELS = (0, 1, 5, 20, 50, 100, 200)
SPEAKER_SLACK = 1.25


def key(e):
    return (e.kind, e.segment_id, e.text)


def run(url: str, path: Path, n_viewers: int, name: str) -> dict:
    pcm, rate = read_audio(path)
    spoken: dict = {}
    speaker_events = []
    started = threading.Event()

    def speak():
        with PipelineClient(url) as client:
            for e in client.stream(chunks(pcm, rate // 10), SessionOptions(name, rate), realtime=True):
                if e.kind == EventKind.PARTIAL:
                    continue  # the interim text: not stored, not compared
                spoken[key(e)] = time.monotonic()
                speaker_events.append(e)
                started.set()

    views = [dict() for _ in range(n_viewers)]

    def view(i):
        with PipelineClient(url) as client:
            for e in client.watch(name):
                if e.kind != EventKind.PARTIAL:  # the interim text (live only): not compared
                    views[i][key(e)] = time.monotonic()

    speaker = threading.Thread(target=speak)
    speaker.start()
    time.sleep(0.5)  # the session exists once its first request is in
    viewers = [threading.Thread(target=view, args=(i,)) for i in range(n_viewers)]
    for t in viewers:
        t.start()
    speaker.join()
    for t in viewers:
        t.join(60)
    delays = [(seen[k] - spoken[k]) * 1000 for seen in views for k in seen if k in spoken and seen[k] >= spoken[k] - 5]
    complete = sum(set(seen) == set(spoken) for seen in views)
    transcript_latency = percentiles([e.latency_ms for e in speaker_events if e.kind == EventKind.TRANSCRIPT])
    return {
        "viewers": n_viewers,
        "viewer_delay_ms": percentiles(delays),
        "complete_viewers": complete,
        "speaker_transcript_latency_ms": transcript_latency,
    }


def main():
    path = make_all(DATA)["speech"]
    server = start_server("bench-viewers", llm="gemma3-270m")
    try:
        rows = []
        for n in LEVELS:
            rows.append(run(server.grpc_url, path, n, f"viewers-{n}-{int(time.time())}"))
            base = rows[0]["speaker_transcript_latency_ms"].get("p95", 1e9)
            row = rows[-1]
            row["speaker_realtime"] = row["speaker_transcript_latency_ms"].get("p95", 1e9) <= SPEAKER_SLACK * base
            if not (row["speaker_realtime"] and row["complete_viewers"] == n):
                break
    finally:
        server.stop()
    served = max([r["viewers"] for r in rows if r["speaker_realtime"] and r["complete_viewers"] == r["viewers"]])
    lines = [
        "# Viewers of one session\n",
        f"Measured {machine()['date']} on {machine()['cpus']} CPUs; speaker streams a 24 s German file in real time "
        f"(translation on, Gemma 3 270M); viewers subscribe through `pipeline` like any client, all on this machine.\n",
        f"Viewers served with the speaker real-time (transcript p95 within {SPEAKER_SLACK}x of no viewers) "
        f"and every viewer complete: {served}{'' if served < LEVELS[-1] else ' (the highest level tried)'}.\n",
        "| viewers | viewer delay p50 ms | p95 ms | max ms | viewers with every event | speaker transcript p95 ms | speaker real-time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r["viewer_delay_ms"]
        lines.append(
            f"| {r['viewers']} | {d.get('p50')} | {d.get('p95')} | {d.get('max')} | {r['complete_viewers']} | "
            f"{r['speaker_transcript_latency_ms'].get('p95')} | {'yes' if r['speaker_realtime'] else 'no'} |"
        )
    write_report("viewers", {"machine": machine(), "runs": rows, "viewers_served": served}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
