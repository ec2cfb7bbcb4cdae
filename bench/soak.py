"""Soak: many short streams against one server, one after another and side by side, each
as its own CLI process (as users and the tests run it). Any stream that does not end within
`--timeout` is a hang, one with an `error` event a failure; the server log and the stuck client's stderr are kept for reading.

    .venv/bin/python bench/soak.py --rounds 20
"""

from __future__ import annotations

import argparse
import concurrent.futures
import subprocess
import sys
import time

from common import ROOT, start_server

from livetranslate.quality.samples import make_all

CLI = [sys.executable, "-m", "livetranslate.cli"]


def one(url: str, path, name: str, timeout: float, translate: bool) -> tuple[str, float, str]:
    started = time.monotonic()
    command = CLI + ["stream", str(path), "--url", url, "--session", name, "--no-reconnect", "--format", "jsonl"]
    if not translate:
        command.append("--no-translate")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return "hang", time.monotonic() - started, (exc.stderr or b"").decode(errors="replace")[-2000:]
    ok = (
        done.returncode == 0
        and '"kind": "end"' in done.stdout
        and '"kind": "transcript"' in done.stdout
        and '"kind": "error"' not in done.stdout
    )
    return ("ok" if ok else "fail"), time.monotonic() - started, done.stderr[-2000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--translate", action="store_true")
    args = parser.parse_args()

    audio = make_all(ROOT / ".cache" / "test-audio")
    server = start_server("soak", llm="gemma3-270m", data_dir=ROOT / ".cache" / "soak-sessions")
    url = f"localhost:{server.options.grpc_port}"
    outcomes: list[tuple[str, float, str]] = []
    try:
        for i in range(args.rounds):
            outcomes.append(one(url, audio["speech_b"], f"soak-{i}", args.timeout, args.translate))
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                outcomes += pool.map(
                    lambda k: one(url, audio["speech"], f"soak-{i}-{k}", args.timeout, args.translate),
                    range(args.parallel),
                )
            print(f"round {i}: {[o[0] for o in outcomes[-1 - args.parallel :]]}", flush=True)
    finally:
        server.stop()
    bad = [o for o in outcomes if o[0] != "ok"]
    for kind, seconds, stderr in bad:
        print(f"--- {kind} after {seconds:.0f} s\n{stderr}")
    summary = {
        "streams": len(outcomes),
        "ok": len(outcomes) - len(bad),
        "hangs": sum(o[0] == "hang" for o in outcomes),
        "failures": sum(o[0] == "fail" for o in outcomes),
        "seconds_max": max(o[1] for o in outcomes),
    }
    print(summary)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
