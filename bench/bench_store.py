"""What durability costs the store: SessionStore.append with the event fsync'ed (fdatasync) before
it returns, against append without, in the same run, on the same file system; and the durable
metadata replace (sync_info: temporary file, fsync, rename, directory fsync) against the plain
one. Rounds alternate between the two settings so that a machine busy with other work slows
both alike.

    .venv/bin/python bench/bench_store.py [--events 2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, percentiles  # noqa: E402

from livetranslate.protocol import Event, EventKind  # noqa: E402
from livetranslate.store import SessionStore  # noqa: E402

ROUNDS = 10
TEXT = "Wir treffen uns morgen um zehn Uhr im großen Besprechungsraum, bitte bringt die Zahlen mit."


def file_system(path: Path) -> str:
    out = subprocess.run(["df", "--output=fstype,source", str(path)], capture_output=True, text=True)
    return " on ".join(out.stdout.split()[2:4]) if out.returncode == 0 else "unknown"


def timed_us(call, n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter_ns()
        call(i)
        times.append((time.perf_counter_ns() - start) / 1000)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per setting")
    parser.add_argument("--dir", type=Path, default=None, help="where the data directories go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="livetranslate-bench-store-", dir=args.dir))
    appends = {True: [], False: []}
    metas = {True: [], False: []}
    try:
        stores = {sync: SessionStore(base / f"fsync-{sync}", fsync=sync) for sync in (True, False)}
        for store in stores.values():
            store.open("bench", "de", "en")
        per_round = args.events // ROUNDS
        for r in range(ROUNDS):
            for sync in (True, False) if r % 2 == 0 else (False, True):
                store = stores[sync]

                def append(i):
                    seg = r * per_round + i
                    store.append("bench", Event(EventKind.TRANSCRIPT, TEXT, seg, seg * 2.0, seg * 2.0 + 1.8, "de"))

                appends[sync] += timed_us(append, per_round)
                metas[sync] += timed_us(lambda i: store.sync_info("bench"), max(per_round // 10, 1))
        fs = file_system(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    on, off = percentiles(appends[True]), percentiles(appends[False])
    meta_on, meta_off = percentiles(metas[True]), percentiles(metas[False])
    m = machine()
    lines = [
        "# Store durability: the cost of fsync per event\n",
        f"Measured {m['date']} on {m['cpus']} CPUs (shared with other work), Python {m['python']}, "
        f"{m['platform']}; data directory on {fs}.\n",
        f"    .venv/bin/python bench/bench_store.py --events {args.events}\n",
        f"{on['n']} events per setting, one `transcript` event each ({len(TEXT)} characters of text, "
        f"a {len(Event(EventKind.TRANSCRIPT, TEXT).to_json().encode()) + 1}-byte line), {ROUNDS} rounds alternating "
        "the settings; time per `SessionStore.append` call (write, and with fsync on an fdatasync of the log).\n",
        "| operation | fsync | median µs | p95 µs | max µs | mean µs |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in (("append (one event)", (on, off)), ("sync_info (metadata replace)", (meta_on, meta_off))):
        for label, s in zip(("on", "off"), stats):
            lines.append(f"| {name} | {label} | {s['p50']} | {s['p95']} | {s['max']} | {s['mean']} |")
    lines += [
        "",
        f"fsync on / off, append: median {on['p50'] / off['p50']:.1f}x, p95 {on['p95'] / off['p95']:.1f}x; "
        f"events per second with fsync on: {1e6 / on['mean']:.0f} (one stream sends a few per second).",
        f"sync_info (called once per transcript): median {meta_on['p50'] / meta_off['p50']:.1f}x.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    report = "\n".join(lines) + "\n"
    (args.out / "store.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
