"""What abuse costs two live speakers and a viewer, and where "server full" starts.

    .venv/bin/python bench/bench_abuse.py [--seconds 120] [--huge-mb 64]

One server, one run: two real-time streams of the bench recording and a viewer of the first,
alone, then the same while every attack of bench/abuse.py runs against the server (direct llm
and whisper loops, oversized chunks in a loop, hoarded streams, 1000 unknown subscribes,
streams opened and dropped in a tight loop, a viewer that never reads). Reports each speaker's
final-transcript latency p50/p95 both ways and the p95 ratio, whether any of their events was
lost, the server's memory before and after, and how many speaker streams the server takes
before it answers "server full" (and how fast it answers).
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
import tritonclient.grpc as grpcclient  # noqa: E402
from abuse import Attack, tensor  # noqa: E402
from bench_oversized import memory  # noqa: E402
from common import DATA, machine, percentiles, start_server, stream_timed, write_report  # noqa: E402

from livetranslate import protocol as P  # noqa: E402
from livetranslate.audio import read_audio  # noqa: E402
from livetranslate.client import Connection, PipelineClient  # noqa: E402
from livetranslate.protocol import Event, EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.samples import make_bench_recording  # noqa: E402


def finals_ms(received) -> list[float]:
    return [e.latency_ms for _, e in received if e.kind == EventKind.TRANSCRIPT]


def full_point(url: str, most: int = 64, headers: dict | None = None) -> dict:
    """Opens idle speaker streams one by one until the server refuses one; then ends them.
    (Quickly: past no_audio_yield_s the quietest of them would give its place to the next.)"""
    import queue

    client, answers = grpcclient.InferenceServerClient(url), queue.Queue()
    client.start_stream(
        callback=lambda result, error: answers.put(error or Event.from_tensors(result.as_numpy)), headers=headers
    )
    ids, refused_at, refusal_s = [], None, None
    for n in range(1, most + 1):
        sequence_id = random.randint(1, 2**62)
        options = SessionOptions(f"full-{n}", translate=False, partials=False).to_tensors()
        began = time.monotonic()
        client.async_stream_infer(
            P.PIPELINE,
            [tensor(P.AUDIO, np.zeros(1600, np.int16))] + [tensor(k, v) for k, v in options.items()],
            sequence_id=sequence_id,
            sequence_start=True,
        )
        ids.append(sequence_id)
        deadline = time.monotonic() + 0.5  # a refusal comes in milliseconds; a place taken says nothing
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
        client.async_stream_infer(
            P.PIPELINE, [tensor(P.AUDIO, np.zeros(0, np.int16))], sequence_id=sequence_id, sequence_end=True
        )
    time.sleep(2.0)
    client.stop_stream()
    client.close()
    return {"refused_at_stream": refused_at, "refusal_ms": round(refusal_s * 1000, 1) if refusal_s else None}


def speakers(url, path: Path, seconds: float, tag: str, attack: dict | None = None) -> dict:
    """Two speakers streaming the recording in real time (sessions `{tag}-a`, `{tag}-b`) and a
    viewer of `{tag}-a`; with `attack` (Attack's options), every attack runs beside them from
    a second after they began. Returns each one's events, and the attacks' tally."""
    out: dict = {"viewer": []}

    def speak(name):
        try:
            out[name] = stream_timed(
                url, path, realtime=True, session=f"{tag}-{name}", translate=False, seconds=seconds
            )[0]
        except Exception as exc:  # the server died under the attack: reported, not raised
            out[name] = []
            out.setdefault("failures", []).append(f"speaker {name}: {exc}")

    def view():
        try:
            with PipelineClient(url) as client:
                out["viewer"] = list(client.watch(f"{tag}-a", idle_timeout_s=seconds + 120))
        except Exception as exc:
            out.setdefault("failures", []).append(f"viewer: {exc}")

    def latecomer():  # a speaker who comes while the attack holds every place it can
        time.sleep(LATECOMER_AFTER_S)
        try:
            out["late"] = stream_timed(
                url, path, realtime=True, session=f"{tag}-late", translate=False, seconds=LATECOMER_S
            )[0]
        except Exception as exc:
            out["late"] = []
            out.setdefault("failures", []).append(f"latecomer: {exc}")

    threads = [threading.Thread(target=speak, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the speakers hold their places, their sessions exist
    threads.append(threading.Thread(target=view))
    threads[-1].start()
    running = Attack(url.url, **attack).start() if attack else None
    if attack:
        threads.append(threading.Thread(target=latecomer))
        threads[-1].start()
    for thread in threads:
        thread.join()
    out["tally"] = running.stop().outcomes if running else {}
    return out


KEYS_SAY = (
    ", with named client keys: the speakers, their viewer and the latecomer share the key 'team' "
    "(4 streams, 4 viewers), the attacks use the key 'attacker' (2 streams, 2 viewers)"
)
# a third speaker comes this long into the attack, and speaks this long
LATECOMER_AFTER_S, LATECOMER_S = 30.0, 20.0


def texts(events) -> list[str]:
    return [e.text for e in events if e.kind == EventKind.TRANSCRIPT]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0, help="of the bench recording, per run")
    parser.add_argument("--huge-mb", type=float, default=64.0, help="each oversized chunk")
    parser.add_argument(
        "--keys",
        action="store_true",
        help="named client keys: the speakers, the viewer and the latecomer share one (4 streams), "
        "the attacker has its own (2 streams, 2 viewers)",
    )
    args = parser.parse_args()
    path = make_bench_recording(DATA)
    extra, ours, theirs = {}, None, None
    if args.keys:
        import secrets
        import tempfile

        ours, theirs = secrets.token_hex(16), secrets.token_hex(16)
        keys = Path(tempfile.mkdtemp(prefix="bench-keys-")) / "keys"
        keys.write_text(f"team {ours} streams=4 viewers=4\nattacker {theirs} streams=2 viewers=2\n")
        keys.chmod(0o600)
        extra = {"keys_file": keys}
    server = start_server("bench-abuse", llm="gemma3-270m", **extra)
    url = Connection(server.grpc_url, api_key=ours)
    attack = {
        "idle_streams": 12,
        "huge_samples": int(args.huge_mb * 2**20 / 2),
        "huge_every_s": 2.0,
        "churn": True,
        "stuck_viewer_of": "attacked-a",
        "headers": Connection(server.grpc_url, api_key=theirs).headers,
    }
    try:
        pid = server.process.pid
        memory_before = memory(pid)
        calm = speakers(url, path, args.seconds, "calm")
        memory_calm = memory(pid)
        full = full_point(server.grpc_url, headers=url.headers)  # on a calm server (see full_point)
        attacked = speakers(url, path, args.seconds, "attacked", attack)
        time.sleep(10)
        died = server.process.poll()
        memory_after = memory(pid) if died is None else {"tritonserver_rss_mb": 0, "stubs_rss_mb": 0, "dev_shm_mb": 0}
        crash = (
            [
                line
                for line in server.log_tail(400).splitlines()
                if "ASSERTION" in line or "Signal (" in line and "(15)" not in line
            ]
            if died is not None
            else []
        )
        ready = server.is_ready()
    finally:
        server.stop()
    audio_s = min(args.seconds, len(read_audio(path)[0]) / read_audio(path)[1])
    rows, ratios, lost = [], {}, {}
    for name in ("a", "b"):
        c, a = percentiles(finals_ms(calm[name])), percentiles(finals_ms(attacked[name]))
        if not a:  # no transcript under attack: the server died
            a = {"p50": float("nan"), "p95": float("nan")}
        ratios[name] = round(a["p95"] / c["p95"], 2)
        rows.append(
            f"| speaker {name.upper()} | {c['p50']:.0f} / {c['p95']:.0f} ms | {a['p50']:.0f} / {a['p95']:.0f} ms "
            f"| {ratios[name]} |"
        )
        events = [e for _, e in attacked[name]]
        lost[name] = {
            "same_transcripts": texts(e for _, e in calm[name]) == texts(events),
            "errors": [e.text or e.error for e in events if e.kind == EventKind.ERROR or e.error],
            "ended": bool(events) and events[-1].kind == EventKind.END,
        }
    spoken_a = texts(e for _, e in attacked["a"])
    late = [e for _, e in attacked["late"]]
    late_ok = {
        "transcripts": len(texts(late)),
        "end": late[-1].error or "ok" if late else "none",
        "refused": [e.error for e in late if "server full" in e.error],
    }
    viewer_ok = texts(attacked["viewer"]) == spoken_a and texts(calm["viewer"]) == texts(e for _, e in calm["a"])
    data = {
        "machine": machine(),
        "audio_s": round(audio_s, 1),
        "attack": attack,
        "p95_ratio": ratios,
        "latency_ms": {
            f"{run}-{name}": percentiles(finals_ms(result[name]))
            for run, result in (("calm", calm), ("attacked", attacked))
            for name in ("a", "b")
        },
        "speakers": lost,
        "viewer_saw_every_transcript": viewer_ok,
        "attacks": attacked["tally"],
        "latecomer": late_ok,
        "memory": {
            "before": memory_before,
            "after the calm run": memory_calm,
            "10 s after the attacked run": memory_after,
        },
        "server_full": full,
        "ready_after": ready,
        "triton_exit": died,
        "triton_said": crash,
        "failures": attacked.get("failures", []),
    }
    mem_rows = "\n".join(
        f"| {when} | {m['tritonserver_rss_mb']:.0f} | {m['stubs_rss_mb']:.0f} | {m['dev_shm_mb']:.0f} |"
        for when, m in data["memory"].items()
    )
    md = f"""# Abuse beside two live speakers and a viewer

`.venv/bin/python bench/bench_abuse.py --seconds {args.seconds:g} --huge-mb {args.huge_mb:g}{" --keys" if args.keys else ""}` ({data["machine"]["cpus"]} CPUs,
{data["machine"]["date"]}). One server (default settings{KEYS_SAY if args.keys else ", no client keys: loopback"}, Gemma 3 270M); two speakers stream the first
{audio_s:.0f} s of the bench recording in real time (partials on, translation off) and a viewer follows
the first one: once alone, once while every attack of `bench/abuse.py` runs beside them: direct `llm` and
`whisper` loops, {args.huge_mb:g} MB chunks every 2 s, {attack["idle_streams"]} hoarded streams (START, then
nothing), 1000 subscribes to unknown sessions, streams opened and dropped in a tight loop, and a viewer
of the first speaker that never reads.

| final-transcript latency p50 / p95 | alone | under attack | p95 ratio (target at most 1.5) |
|---|---|---|---|
{chr(10).join(rows)}

- Events lost: speaker A {lost["a"]}, speaker B {lost["b"]} (same transcripts as alone, the error events
  each got, whether each got its `end`). The viewer saw every transcript of speaker A: {viewer_ok}.
- A third speaker who came {LATECOMER_AFTER_S:.0f} s into the attack, when the hoarded and dropped streams held
  every place it could, and spoke {LATECOMER_S:.0f} s: {late_ok["transcripts"]} transcripts, its end: {late_ok["end"]}.
- What the attacks got: {", ".join(f"{k}: {v}" for k, v in attacked["tally"].items())}.
- Triton {"kept running" if died is None else f"DIED under the attack (exit code {died}): " + "; ".join(crash)}.
  Failures: {attacked.get("failures") or "none"}.
- "server full" came at speaker stream {full["refused_at_stream"]} (the configured `max_streams` + 1),
  {full["refusal_ms"]} ms after that stream's first request. Server ready afterwards: {ready}.

| memory (MB) | tritonserver RSS | stub processes' RSS (all) | Triton's /dev/shm |
|---|---|---|---|
{mem_rows}
What tuning saw: nothing was tuned on a recording here. The speakers stream the espeak-ng bench
recording (`livetranslate/quality/samples.py`); the natural recording was not run. The 60 s / 15 s
no-audio times and the limits come from the issue and the server's defaults, set before any run.
"""
    write_report("abuse-keys" if args.keys else "abuse", data, md)


if __name__ == "__main__":
    main()
