"""Figures: does a translation keep what was said? The trap set (livetranslate/traps.py:
German sentences around "zu wenig / zu viel", "nicht mehr / noch", "bis / ab", numbers,
times, dates, comparisons and who does what, each with the facts its English must keep),
translated by each LLM alone on the exact German text, as the speaker's translation is
asked for (no context). Reports the share of facts kept, of sentences with every fact
kept, chrF against the references and the time per sentence; lists every fact lost.

    .venv/bin/python bench/bench_traps.py [--models qwen2.5-1.5b gemma3-270m]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_report  # noqa: E402

import sacrebleu  # noqa: E402

from livetranslate.llm import create_engine  # noqa: E402
from livetranslate.models import MODELS, resolve  # noqa: E402
from livetranslate.translate import TranslationError, Translator  # noqa: E402
from livetranslate.traps import TRAPS, check, facts_kept  # noqa: E402


def run(model: str) -> dict:
    engine = create_engine("llama_cpp", str(resolve(model)))
    translator = Translator(lambda r, **_: "".join(engine.generate(r)), MODELS[model].prompt_family)
    translator.translate("Guten Morgen.", "de", "en")  # warm: the timing is of the calls after
    verdicts, times = [], []
    for trap in TRAPS:
        started = time.monotonic()
        try:
            out = translator.translate(trap.de, "de", "en")
        except TranslationError as exc:
            out = f"[refused: {exc}]"
        times.append(time.monotonic() - started)
        verdicts.append(check(trap, out))
    return {
        "model": model,
        "facts_kept": round(100 * facts_kept(verdicts), 1),
        "sentences_kept": sum(v.kept for v in verdicts),
        "sentences": len(verdicts),
        "chrf": round(sacrebleu.corpus_chrf([v.translation for v in verdicts], [[t.en for t in TRAPS]]).score, 1),
        "ms_per_sentence": round(1000 * sum(times) / len(times)),
        "lost": [{"de": v.trap.de, "en": v.translation, "lost": list(v.lost)} for v in verdicts if v.lost],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["qwen2.5-1.5b", "gemma3-270m"])
    parser.add_argument("--name", default="traps")
    args = parser.parse_args()
    results = [run(m) for m in args.models]
    facts = sum(len(t.facts) for t in TRAPS)
    md = [f"# Traps: does the translation keep what was said?\n",
          f"Measured {machine()['date']} on {machine()['cpus']} CPUs. {len(TRAPS)} German sentences, {facts} facts "
          f"(livetranslate/traps.py, written before anything was tuned on it); each model translates the exact "
          f"German text alone, as the speaker's translation is asked for (no context), temperature 0.\n",
          "| model | facts kept | sentences with every fact kept | chrF | ms per sentence |",
          "|---|---|---|---|---|"]
    for r in results:
        md.append(f"| {r['model']} | {r['facts_kept']} % | {r['sentences_kept']} / {r['sentences']} | {r['chrf']} "
                  f"| {r['ms_per_sentence']} |")
    for r in results:
        md.append(f"\n## What {r['model']} lost\n")
        md += [f"- {x['de']} → {x['en']} ({'; '.join(x['lost'])})" for x in r["lost"]] or ["- nothing"]
    write_report(args.name, {"machine": machine(), "results": results}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
