"""Figures: the first English a reader sees of each finished sentence, before and after the
large model made it by default, in one run (both settings side by side, alternating per
recording so the machine's load falls on both alike).

Per setting and recording (streamed in real time through a real server, partials on):
- first English words after the end of speech (the first `partial_translation`, else the
  `translation`), p50 / p95, and the whole sentence (`translation`) p50 / p95;
- chrF of the first complete translations (`translation` events) against the reference, and
  of the large model translating the same transcripts one by one in process (the anchor the
  first English should be within 1 point of);
- the final transcripts' latency and WER (numbers spelled out): they may not get worse;
- how many translations the small model made (marked) and the in-context windows.

    .venv/bin/python bench/bench_first_english.py [--only natural] [--seconds 90]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sacrebleu  # noqa: E402
from bench_accuracy import first_translated_words_ms, what_a_reader_keeps  # noqa: E402
from bench_lag import repository  # noqa: E402
from common import machine, percentiles, recordings, start_server, stream_timed, write_report  # noqa: E402

from livetranslate.protocol import EventKind  # noqa: E402
from livetranslate.quality.evaluation import wer_both  # noqa: E402
from livetranslate.stages.llm import create_engine  # noqa: E402
from livetranslate.stages.translate import Translator  # noqa: E402
from livetranslate.weights.catalog import MODELS, resolve  # noqa: E402

TUNING = "Tuning: nothing in this change was tuned on either recording (espeak, natural); the prompt's pitfalls and the check after the translation were tuned on the trap set only (livetranslate/quality/traps.py TRAPS; bench/results/traps.md)."

SETTINGS = {
    "before: small model first (basic_model small, one Qwen instance)": {
        "pipeline": {"basic_model": "small"},
        "llm": {"urgent_context": "false"},
    },
    "now: auto (large model unless late, its own instance)": {},
}


def chrf(hypotheses: list[str], reference: str) -> float:
    return round(sacrebleu.corpus_chrf([" ".join(hypotheses)], [[reference]]).score, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("espeak", "natural"))
    parser.add_argument("--seconds", type=float, default=None, help="the first seconds of each recording")
    parser.add_argument("--name", default="first_english")
    args = parser.parse_args()
    runs = [rec for rec in recordings() if args.only in (None, rec.name)]
    data = {"machine": machine(), "seconds": args.seconds, "results": {}}
    live = {}
    for rec in runs:
        for setting, changes in SETTINGS.items():
            server = start_server("bench-first-english", model_repository=repository(changes), llm="qwen2.5-1.5b")
            try:
                live[(rec.name, setting)], _, _ = stream_timed(
                    server.grpc_url, rec.path, realtime=True, session=f"first-{rec.name}", seconds=args.seconds
                )
            finally:
                server.stop()
    # the anchor: the large model on each run's own transcripts, one by one (the CPU to itself)
    engine = create_engine("llama_cpp", str(resolve("qwen2.5-1.5b")))
    large = Translator(lambda r, **_: "".join(engine.generate(r)), MODELS["qwen2.5-1.5b"].prompt_family)
    for (name, setting), received in live.items():
        rec = next(r for r in runs if r.name == name)
        n = len(rec.german) if args.seconds is None else sum(1 for _, end in rec.spans_s if end <= args.seconds)
        german, english = " ".join(rec.german[:n]), " ".join(rec.english[:n])
        events = [e for _, e in received]
        transcripts = [e for e in events if e.kind == EventKind.TRANSCRIPT]
        translations = [e for e in events if e.kind == EventKind.TRANSLATION]
        anchor = []
        for t in transcripts:
            try:
                anchor.append(large.translate(t.text, "de", "en"))
            except Exception:
                anchor.append("")
        made = [e for e in translations if e.text and not e.error]
        data["results"].setdefault(name, {})[setting] = {
            "first_words_ms": percentiles(first_translated_words_ms(received)),
            "sentence_ms": percentiles([e.latency_ms for e in made]),
            "transcript_ms": percentiles([e.latency_ms for e in transcripts]),
            "wer": round(wer_both(german, " ".join(t.text for t in transcripts))["wer_numbers"], 3),
            "chrf_first": chrf([e.text for e in translations], english),
            "chrf_large_same_transcripts": chrf(anchor, english),
            "chrf_reader": chrf([what_a_reader_keeps(received)], english),
            "translations": len(translations),
            "failed": len(translations) - len(made),
            "small_model": sum(bool(e.note) for e in made),
            "windows": len([e for e in events if e.kind == EventKind.ENHANCED and e.text and not e.error]),
        }
    write_report(args.name, data, render(data))


def render(d: dict) -> str:
    cut = f" (its first {d['seconds']:.0f} s)" if d["seconds"] else ""
    lines = [
        "# The first English a reader sees\n",
        f"Measured {d['machine']['date']} on {d['machine']['cpus']} CPUs, one real-time stream{cut}, partials "
        f"on, Qwen2.5-Coder 1.5B as the large model, Gemma 3 270M as the small one; both settings in one run, "
        f"alternating per recording. First words: end of speech to the first English of the sentence; "
        f"sentence: to its complete `translation`. The anchor is the large model translating the same run's "
        f"transcripts one by one in process. {TUNING}\n",
    ]
    for name, settings in d["results"].items():
        lines += [
            f"## {name}\n",
            "| setting | first English chrF | large model, same transcripts | what a reader keeps | first words p50 / p95 ms "
            "| sentence p50 / p95 ms | final transcript p50 / p95 ms | WER | small model | windows |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for setting, r in settings.items():
            fw, se, tr = r["first_words_ms"], r["sentence_ms"], r["transcript_ms"]
            lines.append(
                f"| {setting} | {r['chrf_first']} | {r['chrf_large_same_transcripts']} | {r['chrf_reader']} | "
                f"{fw.get('p50')} / {fw.get('p95')} | {se.get('p50')} / {se.get('p95')} | "
                f"{tr.get('p50')} / {tr.get('p95')} | {r['wer']:.1%} | {r['small_model']} of "
                f"{r['translations']} | {r['windows']} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
