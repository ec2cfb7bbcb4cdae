"""What the OpenAI-compatible gateway adds: the time to answer a transcription of the
3-minute bench recording through the gateway (the `openai` package, `json`), against
`livetranslate stream` of the same file to the same running server, alternating A B B A.

    .venv/bin/python bench/bench_gateway.py [--rounds 2] [--smoke] [--out DIR]

Both send the file as fast as the server takes it, without partials and without translation
(a transcription asks for neither: `stream --no-translate --no-partials`). A is the command
as a user runs it, from its start (Python and its imports, reading the file) to its exit; B
is the request from the call to the answer (the upload, the gateway's decoding, the same
gRPC stream), the gateway already running; C, in the middle of each round, is the client
library in this process (the file read, one stream): what B costs beyond it is the gateway's. The load average is recorded beside each run:
on a shared machine it says how far to trust a difference of a few per cent. The answers'
texts are compared too: the gateway should give what `stream` prints."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, free_port, machine, recordings, start_server, write_report  # noqa: E402

CLI = [sys.executable, "-m", "livetranslate.cli"]
# A B B A for the command against the gateway, with the client library (C) in the middle:
# each pair of variants alternates A B B A
ORDER = ("stream", "gateway", "client", "client", "gateway", "stream")


def run_stream(url: str, path: Path, session: str) -> tuple[float, str]:
    """`livetranslate stream`: seconds from start to exit, and its transcripts' text."""
    started = time.monotonic()
    out = subprocess.run(
        [*CLI, "stream", str(path), "--url", url, "--session", session, "--language", "de"]
        + ["--no-translate", "--no-partials", "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=1800,
        env=_env(),
    )
    seconds = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"stream failed: {out.stderr[-2000:]}")
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    text = " ".join(e["text"].strip() for e in events if e["kind"] == "transcript" and e["text"].strip())
    return seconds, text


def run_gateway(base: str, path: Path, session: str) -> tuple[float, str]:
    import openai

    client = openai.OpenAI(base_url=base, api_key="bench", max_retries=0, timeout=1800)
    started = time.monotonic()
    with open(path, "rb") as audio:
        made = client.audio.transcriptions.create(
            model="whisper-1", file=audio, language="de", extra_body={"session": session}
        )
    return time.monotonic() - started, made.text


def run_client(url: str, path: Path, session: str) -> tuple[float, str]:
    """The client library in this process, as the gateway uses it: the file read, then one
    stream (no process to start, no HTTP)."""
    from livetranslate.audio import chunks, read_audio
    from livetranslate.client import PipelineClient
    from livetranslate.protocol import EventKind, SessionOptions

    started = time.monotonic()
    pcm, rate = read_audio(path)
    options = SessionOptions(session, rate, "de", translate=False, partials=False)
    with PipelineClient(url) as client:
        events = list(client.stream(chunks(pcm, rate // 10), options))
    text = " ".join(e.text.strip() for e in events if e.kind == EventKind.TRANSCRIPT and e.text.strip())
    return time.monotonic() - started, text


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("LIVETRANSLATE_")}


def start_gateway(url: str) -> tuple[subprocess.Popen, str]:
    import urllib.request

    port = free_port()
    log = open(ROOT / ".cache" / "bench-gateway-http.log", "w")  # the gateway's own lines, kept for a look
    process = subprocess.Popen([*CLI, "gateway", "--port", str(port), "--url", url], stdout=log, stderr=log, env=_env())
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/models", timeout=2).read()
            return process, base
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the gateway did not start") from None
            time.sleep(0.3)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 2),
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds")
    parser.add_argument("--smoke", action="store_true", help="the five-sentence recording, one round")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--from-json", type=Path, help="write the report of an earlier run from its .json, measuring nothing"
    )
    args = parser.parse_args()
    if args.from_json:
        old = json.loads(args.from_json.read_text())
        report(old["runs"], old["recording"], old["distinct_texts"], old["machine"], args)
        return
    recording = recordings(smoke=args.smoke)[0]
    rounds = 1 if args.smoke else args.rounds
    import soundfile

    audio_s = soundfile.info(str(recording.path)).duration
    server = start_server("bench-gateway", llm="gemma3-270m")
    gateway, base = start_gateway(server.grpc_url)
    runs: list[dict] = []
    texts: set[str] = set()
    try:
        run_gateway(base, recording.path, "warm-up")  # the first stream loads what is lazy on both sides
        for r in range(rounds):
            for variant in ORDER:
                load = os.getloadavg()[0]
                session = f"bench-{variant}-{r}-{len(runs)}"
                if variant == "stream":
                    seconds, text = run_stream(server.grpc_url, recording.path, session)
                elif variant == "client":
                    seconds, text = run_client(server.grpc_url, recording.path, session)
                else:
                    seconds, text = run_gateway(base, recording.path, session)
                texts.add(text)
                runs.append({"variant": variant, "round": r + 1, "seconds": round(seconds, 2), "load1": round(load, 2)})
                print(f"{variant:8s} {seconds:7.2f} s  (load {load:.2f})", flush=True)
    finally:
        gateway.terminate()
        gateway.wait(30)
        server.stop()
    about = {"path": recording.path.name, "audio_s": round(audio_s, 1), "about": recording.about}
    report(runs, about, len(texts), machine(), args)


NAMES = {
    "stream": "A: `livetranslate stream`",
    "gateway": "B: the gateway",
    "client": "C: the client library, in process",
}


def percent(a: float, b: float) -> float:
    return round((a / b - 1) * 100, 1)


def report(runs: list[dict], recording: dict, distinct_texts: int, host: dict, args) -> None:
    # One piece: the figures and the page that shows them, side by side, so that each number
    # on the page is visibly the one in the .json.
    for i, run in enumerate(runs):  # a .json from before rounds were written down
        run.setdefault("round", i // len(ORDER) + 1)
    stats = {v: summary([r["seconds"] for r in runs if r["variant"] == v]) for v in NAMES}
    rounds = sorted({r["round"] for r in runs})

    def mean_of(variant: str, round_: int) -> float:
        return statistics.fmean(r["seconds"] for r in runs if r["variant"] == variant and r["round"] == round_)

    per_round = [
        {
            "round": n,
            "gateway_added_percent": percent(mean_of("gateway", n), mean_of("stream", n)),
            "load1_max": max(r["load1"] for r in runs if r["round"] == n),
        }
        for n in rounds
    ]
    loads = [r["load1"] for r in runs]
    data = {
        "machine": host,
        "recording": recording,
        "order": "A B C C B A per round (A: livetranslate stream, B: the gateway, C: the client library)",
        "seconds": stats,
        "gateway_added_percent": {
            "mean": percent(stats["gateway"]["mean"], stats["stream"]["mean"]),
            "median": percent(stats["gateway"]["median"], stats["stream"]["median"]),
            "per_round": per_round,
        },
        "gateway_over_client_library_percent": {
            "mean": percent(stats["gateway"]["mean"], stats["client"]["mean"]),
            "median": percent(stats["gateway"]["median"], stats["client"]["median"]),
        },
        "same_text_every_run": distinct_texts == 1,
        "distinct_texts": distinct_texts,
        "load1": {"min": min(loads), "max": max(loads)},
        "runs": runs,
    }
    added, over = data["gateway_added_percent"], data["gateway_over_client_library_percent"]
    table = "\n".join(
        f"| {NAMES[v]} | {x['n']} | {x['mean']} | {x['median']} | {x['min']} | {x['max']} |" for v, x in stats.items()
    )
    rounds_text = "; ".join(
        f"round {x['round']}: {x['gateway_added_percent']:+.1f} % (load up to {x['load1_max']:.2f})" for x in per_round
    )
    rows = "\n".join(
        f"| {i + 1} | {r['round']} | {r['variant']} | {r['seconds']:.2f} | {r['load1']:.2f} |"
        for i, r in enumerate(runs)
    )
    same = "yes" if distinct_texts == 1 else f"no, {distinct_texts} different texts"
    markdown = f"""# The gateway against `livetranslate stream`

`bench/bench_gateway.py`{" --smoke" if args.smoke else ""}, {host["date"]}, {host["cpus"]} CPUs,
one server (cpu profile). The recording: {recording["path"]}, {recording["audio_s"]:.0f} s ({recording["about"]}),
transcribed (German, no translation, no partials), sent as fast as the server takes it.
A: `livetranslate stream FILE --no-translate --no-partials --format jsonl`, timed from the
command's start to its exit. B: the same file through `livetranslate gateway` with the
`openai` package (`audio.transcriptions.create`, json), timed from the call to the answer.
C: what the gateway does inside, in this process: the file read and one stream through the
client library (`PipelineClient.stream`), no process to start and no HTTP. Order A B C C B A
(each pair alternates A B B A), {len(rounds)} round(s), after one warm-up request.

| | runs | mean s | median s | min s | max s |
|---|---|---|---|---|---|
{table}

**What the gateway adds to the time to answer, against `livetranslate stream`: {added["median"]:+.1f} %
median against median, {added["mean"]:+.1f} % mean against mean** ({rounds_text}). Against the
client library in process (C): {over["median"]:+.1f} % median, {over["mean"]:+.1f} % mean. A's time
includes the command's own start (Python and its imports), which B does not pay (the
gateway is already running); B pays the upload and the HTTP round trip instead.
Same text from every run: {same}.

The machine is shared with other work: the load average (1 min, at each run's start) went
from {min(loads):.2f} to {max(loads):.2f}, and a difference of a few per cent between single
runs of half a minute is within what that load moves.

| run | round | variant | seconds | load |
|---|---|---|---|---|
{rows}
"""
    name = "gateway-smoke" if args.smoke else "gateway"
    write_report(name, data, markdown, args.out)


if __name__ == "__main__":
    main()
