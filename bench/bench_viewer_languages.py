"""Figures: what each extra viewer language costs the speaker.

A speaker streams the first SECONDS of the bench recording (German, 3 voices, noise) in real
time, translated into English; with k = 0, 1, 2 extra languages, one viewer per language
(French, then Spanish) subscribes as soon as the session exists, so the server translates
every transcript k more times. Same recording, same server, one run, the levels in the order
0 1 2 2 1 0 (the machine's drift weighs on each alike): the speaker's translation and
transcript latency per level, as ratios to k = 0, and what the viewers of the extra
languages got (made, failed or too late, their latency).

    .venv/bin/python bench/bench_viewer_languages.py [--llm qwen2.5-1.5b|gemma3-270m] [--seconds 40]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine, percentiles, start_server, write_report  # noqa: E402

from livetranslate.audio import chunks, read_audio  # noqa: E402
from livetranslate.client import ClientError, PipelineClient  # noqa: E402
from livetranslate.pipeline import translator  # noqa: E402
from livetranslate.protocol import EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.samples import make_bench_recording  # noqa: E402

EXTRA = ("fr", "es")


def wait_for_session(url: str, name: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    with PipelineClient(url) as client:
        while time.monotonic() < deadline:
            try:
                client.sessions("get", name)
                return
            except ClientError:
                time.sleep(0.05)
    raise RuntimeError(f"session {name} never started")


def run(url: str, path: Path, seconds: float, extra: tuple[str, ...], name: str) -> dict:
    pcm, rate = read_audio(path)
    pcm = pcm[: int(seconds * rate)]
    spoken, views = [], {}

    def speak():
        options = SessionOptions(name, rate, partials=False)  # translations are what is measured
        with PipelineClient(url) as client:
            spoken.extend(client.stream(chunks(pcm, rate // 10), options, realtime=True))

    def view(language):
        with PipelineClient(url) as client:
            views[language] = list(client.watch(name, language=language))

    started = time.monotonic()
    speaker = threading.Thread(target=speak)
    speaker.start()
    wait_for_session(url, name)
    viewers = [threading.Thread(target=view, args=(language,)) for language in extra]
    for t in viewers:
        t.start()
    speaker.join()
    for t in viewers:
        t.join(120)
    own = [e for e in spoken if e.kind == EventKind.TRANSLATION]
    run_ = {
        "extra_languages": list(extra),
        "transcript_ms": [e.latency_ms for e in spoken if e.kind == EventKind.TRANSCRIPT],
        "translation_ms": [e.latency_ms for e in own if not e.error],
        "translations_failed": sum(bool(e.error) for e in own),
        "wall_s": round(time.monotonic() - started, 1),
        "viewers": {},
    }
    for language, events in views.items():
        theirs = [e for e in events if e.kind == EventKind.TRANSLATION and e.language == language]
        run_["viewers"][language] = {
            "made_ms": [e.latency_ms for e in theirs if not e.error],
            "too_late": sum("behind the speaker" in e.error for e in theirs),
            "failed": sum("failed" in e.error for e in theirs),
        }
    return run_


def level(runs: list[dict]) -> dict:
    """The runs of one level, pooled."""
    pooled = {
        "extra_languages": runs[0]["extra_languages"],
        "runs": len(runs),
        "transcripts": sum(len(r["transcript_ms"]) for r in runs),
        "transcript_latency_ms": percentiles([x for r in runs for x in r["transcript_ms"]]),
        "translation_latency_ms": percentiles([x for r in runs for x in r["translation_ms"]]),
        "translations_failed": sum(r["translations_failed"] for r in runs),
        "viewers": {},
    }
    for language in pooled["extra_languages"]:
        views = [r["viewers"][language] for r in runs]
        pooled["viewers"][language] = {
            "translations": sum(len(v["made_ms"]) for v in views),
            "too_late": sum(v["too_late"] for v in views),
            "failed": sum(v["failed"] for v in views),
            "latency_ms": percentiles([x for v in views for x in v["made_ms"]]),
        }
    return pooled


def ratio(value, base) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "-"


def report(rows: list[dict], runs: list[dict], llm: str, seconds: float, order: list[int]) -> str:
    base = rows[0]
    lines = [
        "# What each viewer language costs the speaker\n",
        f"Measured {machine()['date']} on {machine()['cpus']} CPUs, LLM `{llm}`: a speaker streams the first "
        f"{seconds:.0f} s of the bench recording (German, 3 voices, noise at -45 dBFS) in real time, translated "
        f"into English; with each extra language one viewer reads the session in it (French, then Spanish), so "
        f"every transcript is translated once more per language. Same recording, same server, one run; the "
        f"levels ran in the order {', '.join(map(str, order))} (extra languages), so that a machine getting "
        f"faster or slower meanwhile weighs on every level alike, and each row pools its runs. Ratios are to "
        f"the row without extra languages. The speaker's own translations are made first; extra-language ones "
        f"wait for the LLM's idle time and are stored as failed after "
        f"{translator.VIEWER_LANGUAGE_MAX_WAIT_S:.0f} s of waiting.\n",
        "| extra languages | speaker translation p50 ms | p95 ms | p50 ratio | p95 ratio "
        "| speaker transcript p50 ms | p95 ms | p95 ratio | extra translations made / transcripts "
        "| extra translation p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tr, ts = r["translation_latency_ms"], r["transcript_latency_ms"]
        extra = ", ".join(r["extra_languages"]) or "none"
        made = " · ".join(f"{lang} {v['translations']}/{r['transcripts']}" for lang, v in r["viewers"].items()) or "-"
        lat = [v["latency_ms"] for v in r["viewers"].values() if v["latency_ms"]]
        p50 = " · ".join(str(x["p50"]) for x in lat) or "-"
        p95 = " · ".join(str(x["p95"]) for x in lat) or "-"
        lines.append(
            f"| {extra} | {tr.get('p50')} | {tr.get('p95')} | {ratio(tr.get('p50'), base['translation_latency_ms'].get('p50'))} "
            f"| {ratio(tr.get('p95'), base['translation_latency_ms'].get('p95'))} | {ts.get('p50')} | {ts.get('p95')} "
            f"| {ratio(ts.get('p95'), base['transcript_latency_ms'].get('p95'))} | {made} | {p50} | {p95} |"
        )
    late = sum(v["too_late"] + v["failed"] for r in rows for v in r["viewers"].values())
    lines.append(
        f"\nExtra-language translations failed or stored as too late, all levels: {late}. "
        f"Speaker translations failed: {sum(r['translations_failed'] for r in rows)}."
    )
    lines.append(
        "\nEach run by itself (speaker translation p50 ms, in the order they ran): "
        + ", ".join(f"{len(r['extra_languages'])} extra: {percentiles(r['translation_ms']).get('p50')}" for r in runs)
        + "."
    )
    lines.append("\nThe host is shared and its speed varies: compare rows within this report only.")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", default=None, help="the server's LLM (default: the server's default)")
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    path = make_bench_recording(DATA)
    options = {"llm": args.llm} if args.llm else {}
    server = start_server("bench-viewer-languages", **options)
    llm = args.llm or "qwen2.5-1.5b (default)"
    levels = list(range(len(EXTRA) + 1))
    order = levels + levels[::-1]  # 0 1 2 2 1 0: a linear drift of the machine weighs on each level alike
    try:
        runs = []
        for k in order:
            runs.append(run(server.grpc_url, path, args.seconds, EXTRA[:k], f"languages-{k}-{int(time.time())}"))
            print({key: value for key, value in runs[-1].items() if key != "viewers"}, flush=True)
    finally:
        server.stop()
    rows = [level([r for r in runs if len(r["extra_languages"]) == k]) for k in levels]
    write_report(
        "viewer_languages",
        {"machine": machine(), "llm": llm, "seconds": args.seconds, "order": order, "levels": rows, "runs": runs},
        report(rows, runs, llm, args.seconds, order),
    )


if __name__ == "__main__":
    main()
