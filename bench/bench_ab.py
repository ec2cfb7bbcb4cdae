"""Figures: two source trees of livetranslate against each other, in one run.

Each tree serves the same recording from its own server (the tree's `model_repository` and
package, through PYTHONPATH), in turns A B A B ..., so that the machine's load at any moment
falls on both alike; the report gives each figure's median over the rounds and B/A.

Per tree and round: the meeting recording sent as fast as possible (real-time factor, WER),
then in real time with partials on (final-transcript latency, WER), then its first 60 s in
real time with translation (gemma3-270m: translation latency).

    .venv/bin/python bench/bench_ab.py --tree before=/path/to/old --tree after=. --rounds 2 --name refactor_ab
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, LAID_OUT, RESULTS, machine, percentiles, start_server, stream_timed, write_report  # noqa: E402

from livetranslate.protocol import EventKind  # noqa: E402

if LAID_OUT:
    from livetranslate.quality.evaluation import wer
    from livetranslate.quality.samples import load_reference, make_meeting
else:  # a tree from before the package layout (its modules sat in livetranslate/)
    from livetranslate.evaluation import wer  # type: ignore[no-redef]
    from livetranslate.samples import load_reference, make_meeting  # type: ignore[no-redef]


def texts(received, kind=EventKind.TRANSCRIPT) -> str:
    return " ".join(e.text for _, e in received if e.kind == kind)


def latencies(received, kind) -> list[float]:
    return [e.latency_ms for _, e in received if e.kind == kind and not e.error]


def child(out: Path) -> None:
    """One tree, one round (runs with PYTHONPATH set to the tree)."""
    path = make_meeting(DATA)
    reference = " ".join(u.text for u in load_reference(path))
    server = start_server("bench-ab", llm="gemma3-270m")
    try:
        fast, stats, audio_s = stream_timed(server.grpc_url, path, realtime=False, session="fast", translate=False)
        live, _, _ = stream_timed(server.grpc_url, path, realtime=True, session="live", translate=False)
        spoken, _, _ = stream_timed(server.grpc_url, path, realtime=True, session="translated", seconds=60.0)
    finally:
        server.stop()
    errors = sum(1 for run in (fast, live, spoken) for _, e in run if e.error)
    out.write_text(
        json.dumps(
            {
                "rtf": (stats.finished - stats.started) / audio_s,
                "wer_fast": wer(reference, texts(fast)),
                "wer_live": wer(reference, texts(live)),
                "final_ms": percentiles(latencies(live, EventKind.TRANSCRIPT)),
                "translation_ms": percentiles(latencies(spoken, EventKind.TRANSLATION)),
                "translations": len(latencies(spoken, EventKind.TRANSLATION)),
                "errors": errors,
                # the transcript as sent as fast as possible: a change that moves code only
                # must leave it word for word the same
                "text_fast": texts(fast),
            }
        )
    )


FIGURES = [  # (label, getter)
    ("real-time factor, as fast as possible", lambda r: r["rtf"]),
    ("WER, as fast as possible", lambda r: r["wer_fast"]),
    ("WER, real time", lambda r: r["wer_live"]),
    ("final-transcript latency p50 (ms)", lambda r: r["final_ms"]["p50"]),
    ("final-transcript latency p95 (ms)", lambda r: r["final_ms"]["p95"]),
    ("translation latency p50 (ms)", lambda r: r["translation_ms"]["p50"]),
    ("translation latency p95 (ms)", lambda r: r["translation_ms"]["p95"]),
    ("translations in the first 60 s", lambda r: r["translations"]),
    ("events with an error", lambda r: r["errors"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH, twice (A then B)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="ab", help="report name in bench/results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child))
        return
    trees = [t.split("=", 1) for t in args.tree]
    if len(trees) != 2 or any(len(t) != 2 for t in trees):
        parser.error("give --tree NAME=PATH twice")
    runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, tree in trees:
                out = Path(tmp) / f"{name}-{round_}.json"
                tree = str(Path(tree).resolve())
                # the tree also as the working directory: Triton's stubs put it first on their path
                env = {**os.environ, "PYTHONPATH": tree}
                subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--child", str(out)], env=env, cwd=tree, check=True
                )
                runs[name].append(json.loads(out.read_text()))
                print(name, round_, runs[name][-1], flush=True)
    (a, _), (b, _) = trees
    rows = []
    for label, get in FIGURES:
        va, vb = (statistics.median(get(r) for r in runs[n]) for n in (a, b))
        rows.append({"figure": label, a: round(va, 3), b: round(vb, 3), "ratio": round(vb / va, 3) if va else None})
    same = [runs[a][i].get("text_fast") == runs[b][i].get("text_fast") for i in range(args.rounds)]
    steady = all(r.get("text_fast") == runs[a][0].get("text_fast") for r in runs[a] + runs[b])
    data = {
        "machine": machine(),
        "trees": dict(trees),
        "rounds": args.rounds,
        "runs": runs,
        "rows": rows,
        "same_transcript": same,
        "same_transcript_every_run": steady,
    }
    table = "\n".join(f"| {r['figure']} | {r[a]} | {r[b]} | {r['ratio']} |" for r in rows)
    md = f"""# {a} against {b}, in one run

Measured {data["machine"]["date"]} on {data["machine"]["cpus"]} CPUs: {args.rounds} rounds, the two trees in
turns ({a} then {b}), each with a server of its own; medians over the rounds. Audio: the meeting
recording (espeak-ng German, 161 s) sent as fast as possible and in real time (partials on,
translation off), then its first 60 s in real time with translation (gemma3-270m).

| figure | {a} | {b} | {b} / {a} |
|---|---|---|---|
{table}

The transcript sent as fast as possible, {a} against {b} in each round: {", ".join("identical" if s else "different" for s in same)}
(every run of both trees alike: {"yes" if steady else "no"}).
"""
    write_report(args.name, data, md, RESULTS)


if __name__ == "__main__":
    main()
