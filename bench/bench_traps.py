"""Figures: does a translation keep what was said? The trap set (livetranslate/quality/traps.py:
German sentences around "zu wenig / zu viel", "nicht mehr / noch", "bis / ab", numbers,
times, dates, comparisons and who does what, each with the facts its English must keep),
translated by each LLM alone on the exact German text, as the speaker's translation is
asked for (no context). Reports the share of facts kept, of sentences with every fact
kept, chrF against the references and the time per sentence, for the set tuned on (TRAPS)
and for the held-out set (HELD_OUT, never tuned on); lists every fact lost. The German goes
through the pipeline's number rule first (livetranslate.numbers), as a transcript does.

    .venv/bin/python bench/bench_traps.py [--models qwen2.5-1.5b gemma3-270m]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sacrebleu  # noqa: E402
from common import machine, write_report  # noqa: E402

from livetranslate.numbers import written_numbers  # noqa: E402
from livetranslate.quality.traps import HELD_OUT, TRAPS, check, facts_kept  # noqa: E402
from livetranslate.stages.llm import create_engine  # noqa: E402
from livetranslate.stages.translate import TranslationError, Translator  # noqa: E402
from livetranslate.weights.catalog import MODELS, resolve  # noqa: E402


def run(model: str) -> dict:
    engine = create_engine("llama_cpp", str(resolve(model)))
    translator = Translator(lambda r, **_: "".join(engine.generate(r)), MODELS[model].prompt_family)
    translator.translate("Guten Morgen.", "de", "en")  # warm: the timing is of the calls after
    return {
        "model": model,
        "sets": {name: run_set(translator, traps) for name, traps in (("tuned on", TRAPS), ("held out", HELD_OUT))},
    }


def run_set(translator: Translator, traps) -> dict:
    verdicts, times = [], []
    for trap in traps:
        started = time.monotonic()
        try:
            out = translator.translate(written_numbers(trap.de, "de"), "de", "en")
        except TranslationError as exc:
            out = f"[refused: {exc}]"
        times.append(time.monotonic() - started)
        verdicts.append(check(trap, out))
    return {
        "facts_kept": round(100 * facts_kept(verdicts), 1),
        "sentences_kept": sum(v.kept for v in verdicts),
        "sentences": len(verdicts),
        "chrf": round(sacrebleu.corpus_chrf([v.translation for v in verdicts], [[t.en for t in traps]]).score, 1),
        "ms_per_sentence": round(1000 * sum(times) / len(times)),
        "lost": [{"de": v.trap.de, "en": v.translation, "lost": list(v.lost)} for v in verdicts if v.lost],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["qwen2.5-1.5b", "gemma3-270m"])
    parser.add_argument("--name", default="traps")
    args = parser.parse_args()
    results = [run(m) for m in args.models]
    md = [
        "# Traps: does the translation keep what was said?\n",
        f"Measured {machine()['date']} on {machine()['cpus']} CPUs. German sentences around meaning flips, "
        f"each with the facts its English must keep (livetranslate/quality/traps.py): {len(TRAPS)} sentences "
        f"({sum(len(t.facts) for t in TRAPS)} facts) written before anything was tuned and then tuned on, "
        f"{len(HELD_OUT)} ({sum(len(t.facts) for t in HELD_OUT)} facts) written after the first measurement and "
        f"never tuned on. Each model translates the German alone, as the speaker's translation is asked for "
        f"(no context, temperature 0, numbers written as the pipeline writes them). The held-out set's "
        f"failures were seen once, before the last two prompt steps; no recording was tuned on.\n",
        "| model | set | facts kept | sentences with every fact kept | chrF | ms per sentence |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for name, x in r["sets"].items():
            md.append(
                f"| {r['model']} | {name} | {x['facts_kept']} % | {x['sentences_kept']} / {x['sentences']} "
                f"| {x['chrf']} | {x['ms_per_sentence']} |"
            )
    for r in results:
        for name, x in r["sets"].items():
            md.append(f"\n## What {r['model']} lost ({name})\n")
            md += [f"- {y['de']} → {y['en']} ({'; '.join(y['lost'])})" for y in x["lost"]] or ["- nothing"]
    write_report(args.name, {"machine": machine(), "results": results}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
