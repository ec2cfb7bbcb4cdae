"""Figures: what `livetranslate summary` names, what it invents, and what it costs a live speaker.

Two recorded meetings go through a real server (the default LLM, Qwen 2.5 1.5B) as a
speaker would send them, and then each gets its summary (`summary` through the client, as
the command does). Beside each meeting lies a list written by hand, from the script, of its
decisions and action items: an item counts as named when one line of the summary holds
every group of its words (each group: any of its spellings). What the summary invents is
checked two ways: every name and every number in it must occur in what was said (German or
English), and the summaries are printed in full in the report, read by a person, who notes
beside them what was not said.

The prompt and the piece size were tuned on the espeak meeting (`tune`); the natural
meeting (`report`: other voices, other sentences, numbers and dates) was run once, after.

Cost to a live speaker: the natural meeting's first SECONDS streamed in real time, alone and
while the server makes a summary of the espeak meeting, in the order A B B A: the speaker's
translation latency (speech end to its translation) per variant, and the ratio.

    .venv/bin/python bench/bench_summary.py [--seconds 60] [--skip-cost]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, machine, percentiles, start_server, stream_timed, write_report  # noqa: E402

from livetranslate.client import PipelineClient, summarize  # noqa: E402
from livetranslate.protocol import EventKind  # noqa: E402
from livetranslate.quality import samples, samples_natural  # noqa: E402

# Each item: (what it is, groups of words; a line names it when it holds one word of every group)
# fmt: off
TUNE_ITEMS = [
    ("task: Maria looks for a cheaper server provider by Friday",
     [["maria"], ["cheaper", "provider", "supplier", "server"], ["friday"]]),
    ("task: Thomas writes the website texts in German and English", [["thomas"], ["text"]]),
    ("decision: the website goes online at the start of March", [["website", "web site"], ["march"]]),
    ("task: everyone signs up for the summer party by the end of the week",
     [["register", "sign up", "signs up", "enrol", "registration"], ["week"]]),
    ("decision/task: a holiday list in the wiki, everyone enters their days",
     [["wiki"], ["vacation", "holiday", "leave", "days"]]),
    ("task: team leads check the list for gaps", [["team lead", "team leader", "teamleader"], ["gap"]]),
    ("task: help the two new sales colleagues in their first weeks",
     [["help", "support"], ["colleague", "employee", "new"]]),
    ("decision: next meeting on Monday at nine", [["monday"], ["nine", "9"]]),
]
REPORT_ITEMS = [
    ("task: Jonas calls Mr Petersen (Lindqvist) this afternoon about the unpaid invoice",
     [["jonas"], ["petersen", "lindqvist", "call"]]),
    ("task: Stefan ships the demonstration units a week ahead with Brandt",
     [["stefan"], ["demonstration", "demo", "device", "units", "brandt", "ship", "send"]]),
    ("plan: Stefan and Jonas take the train on Sunday 30 March", [["train", "sunday", "30"]]),
    ("decision: the booking system starts on Monday 12 May 2025", [["booking", "system"], ["12", "may"]]),
    ("decision: two days of consulting from Mr Krause, about 2,400 euros, approved",
     [["krause", "consult"], ["2,400", "2400", "2.400", "two days", "budget"]]),
    ("task: advertise Ms Schulte's position this week, applications by 30 April",
     [["position", "job", "advert", "replacement", "posting"], ["week", "april", "30"]]),
    ("decision: next meeting on 18 March at 10:30 in the large meeting room", [["18"], ["march", "10:30"]]),
]
# fmt: on
# words that start with a capital in any English sentence: not names
_COMMON = set(
    """The A An And But If In On At By For To Of Or We I You He She It They This That These Those
    There Their Our Your My Next First Second Third Summary Decisions Action Items Meeting Monday
    Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July
    August September October November December German English Mr Ms Mrs All Everyone Each Team
    Discuss Discussion Review Plan Planning Check Help Register Write Send Call Start Is Are Be""".split()
)


def named(summary: str, groups: list[list[str]]) -> bool:
    lines = [line.casefold() for line in summary.splitlines() if line.strip()]
    return any(all(any(word in line for word in group) for group in groups) for line in lines)


def invented(summary: str, said: str) -> dict[str, list[str]]:
    """Names and numbers in the summary that were never said (German or English text)."""
    said_folded = said.casefold()
    names = []
    for line in summary.splitlines():
        words = re.findall(r"[A-ZÄÖÜ][\w'-]+", line.split(":", 1)[-1])
        for word in words[1:] if line.startswith("- ") else words:  # a bullet's first word is capitalized
            if word not in _COMMON and word.casefold().rstrip("'s") not in said_folded:
                names.append(word)
    said_numbers = set(re.findall(r"\d+", said.replace(",", "").replace(".", "")))
    numbers = [n for n in re.findall(r"\d+", summary.replace(",", "")) if n not in said_numbers]
    return {"names": sorted(set(names)), "numbers": sorted(set(numbers))}


def summarized(url: str, path: Path, name: str) -> dict:
    started = time.monotonic()
    events, _, audio_s = stream_timed(url, path, realtime=False, session=name, partials=False)
    streamed_s = time.monotonic() - started
    assert events[-1][1].kind == EventKind.END and not events[-1][1].error, events[-1]
    lines = [e for _, e in events if e.kind == EventKind.TRANSCRIPT]
    started = time.monotonic()
    with PipelineClient(url) as client:
        made = summarize(client, name)
    return {
        "audio_s": round(audio_s, 1),
        "streamed_s": round(streamed_s, 1),
        "lines": len(lines),
        "summary_s": round(time.monotonic() - started, 1),
        "summary": made.text,
        "transcript": [e.text for e in lines],
        "translations": [e.text for _, e in events if e.kind == EventKind.TRANSLATION],
    }


def scored(run: dict, items, german: list[str], english: list[str]) -> dict:
    said = " ".join(german + english + run["transcript"] + run["translations"])
    hits = [(what, named(run["summary"], groups)) for what, groups in items]
    return {
        "items": hits,
        "named": sum(ok for _, ok in hits),
        "of": len(items),
        "invented": invented(run["summary"], said),
    }


def cost(url: str, path: Path, seconds: float, busy_session: str) -> dict:
    """The speaker's translation latency alone (A) and while a summary is made (B), A B B A."""
    out: dict[str, list[float]] = {"alone": [], "with_summary": []}
    summaries = []
    for variant in ("alone", "with_summary", "with_summary", "alone"):
        worker = None
        if variant == "with_summary":

            def work():
                started = time.monotonic()
                with PipelineClient(url) as client:
                    summarize(client, busy_session)
                summaries.append(time.monotonic() - started)

            worker = threading.Thread(target=work)
            worker.start()
            time.sleep(1.0)  # the summary's first piece is in the LLM
        events, _, _ = stream_timed(
            url, path, realtime=True, session=f"cost-{uuid.uuid4().hex[:6]}", partials=False, seconds=seconds
        )
        out[variant] += [e.latency_ms / 1000 for _, e in events if e.kind == EventKind.TRANSLATION and not e.error]
        if worker is not None:
            worker.join(600)
    return {
        "alone": percentiles(out["alone"]),
        "with_summary": percentiles(out["with_summary"]),
        "ratio_p50": round(percentiles(out["with_summary"])["p50"] / percentiles(out["alone"])["p50"], 2),
        "summary_s": [round(s, 1) for s in summaries],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument(
        "--script-only", action="store_true", help="add the rows from the scripts' own text to the last results"
    )
    args = parser.parse_args()
    if args.script_only:
        results = json.loads((RESULTS / "summary.json").read_text())
        results["script"] = from_script()
        write_report("summary", results, markdown(results, args.seconds))
        return
    tune_path = samples.make_meeting(DATA)
    report_path = samples_natural.make_natural(DATA)["natural"]
    natural = samples_natural.load_reference(report_path)
    server = start_server("bench-summary")
    try:
        url = server.grpc_url
        tune = summarized(url, tune_path, "summary-tune")
        report = summarized(url, report_path, "summary-report")
        costs = None if args.skip_cost else cost(url, report_path, args.seconds, "summary-tune")
    finally:
        server.stop()
    results = {
        "machine": machine(),
        "tune": {**tune, **scored(tune, TUNE_ITEMS, samples.MEETING_DE, [])},
        "report": {
            **report,
            **scored(report, REPORT_ITEMS, [u.text_de for u in natural], [u.text_en for u in natural]),
        },
        "cost": costs,
    }
    write_report("summary", results, markdown(results, args.seconds))


def from_script() -> dict:
    """The same summarizer (prompt, pieces, LLM) on each meeting's script in English, not on
    what the server heard: how much of the gap is the transcript's and how much the LLM's."""
    from livetranslate.stages.llm.llamacpp import LlamaCppEngine
    from livetranslate.stages.summary import Summarizer, summarize
    from livetranslate.weights.catalog import resolve

    engine = LlamaCppEngine(resolve("qwen2.5-1.5b"), n_threads=2, n_ctx=2048)
    summarizer = Summarizer(lambda request, **_: "".join(engine.generate(request)), "chatml")
    natural = samples_natural.load_reference(samples_natural.make_natural(DATA)["natural"])
    out = {}
    for key, english, items in (
        ("tune", list(samples.MEETING_EN), TUNE_ITEMS),
        ("report", [u.text_en for u in natural], REPORT_ITEMS),
    ):
        started = time.monotonic()
        text = summarize(english, "en", lambda piece: summarizer.piece(piece, "en", "en"))
        run = {"summary": text, "transcript": english, "translations": [], "summary_s": time.monotonic() - started}
        out[key] = {**run, **scored(run, items, [], english)}
    return out


def markdown(r: dict, seconds: float) -> str:
    out = [
        "# Summaries: what they name, what they invent, what they cost",
        "",
        "`bench/bench_summary.py`, the default LLM (Qwen 2.5 1.5B, Q4_K_M, llama.cpp, 2 threads),",
        f"on {r['machine']['cpus']} CPUs, {r['machine']['date']}. The prompt and piece size were tuned on",
        "the espeak meeting (`tune`); the natural meeting (`report`) was not seen while tuning.",
        "",
        "| meeting | audio | lines | items named | invented names | invented numbers | summary took |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("tune", "report"):
        x = r[key]
        out.append(
            f"| {key} | {x['audio_s']:.0f} s | {x['lines']} | {x['named']} of {x['of']} | "
            f"{', '.join(x['invented']['names']) or 'none'} | {', '.join(x['invented']['numbers']) or 'none'} | "
            f"{x['summary_s']:.0f} s |"
        )
    if r.get("script"):
        out += [
            "",
            "The same summarizer on each meeting's script in English (what was meant, not what the server",
            "heard), to tell the transcript's share of the misses from the LLM's:",
            "",
            "| meeting | items named | invented names | invented numbers | summary took |",
            "|---|---|---|---|---|",
        ]
        for key in ("tune", "report"):
            x = r["script"][key]
            out.append(
                f"| {key}, from the script | {x['named']} of {x['of']} | "
                f"{', '.join(x['invented']['names']) or 'none'} | "
                f"{', '.join(x['invented']['numbers']) or 'none'} | {x['summary_s']:.0f} s |"
            )
    for key in ("tune", "report"):
        x = r[key]
        out += ["", f"## {key}: the hand-written list", ""]
        out += [f"- [{'x' if ok else ' '}] {what}" for what, ok in x["items"]]
        out += ["", f"## {key}: the summary, as made", "", "```text", x["summary"], "```"]
        if r.get("script"):
            y = r["script"][key]
            out += ["", f"From the script ({y['named']} of {y['of']}):", ""]
            out += [f"- [{'x' if ok else ' '}] {what}" for what, ok in y["items"]]
            out += ["", "```text", y["summary"], "```"]
    if r["cost"]:
        c = r["cost"]
        out += [
            "",
            f"## Cost to a live speaker ({seconds:.0f} s of the natural meeting, real time, A B B A)",
            "",
            "| variant | translation latency p50 | p95 | max |",
            "|---|---|---|---|",
            f"| alone | {c['alone']['p50']} s | {c['alone']['p95']} s | {c['alone']['max']} s |",
            f"| while a summary is made | {c['with_summary']['p50']} s | {c['with_summary']['p95']} s | "
            f"{c['with_summary']['max']} s |",
            "",
            f"Ratio of the medians: {c['ratio_p50']}. The summaries made meanwhile took "
            f"{', '.join(str(s) for s in c['summary_s'])} s.",
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
