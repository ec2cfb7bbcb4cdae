"""Calibrates the completeness thresholds on the dev set and scores them on the test set.

For each LLM family: P(yes) of every dev text, then the pair of thresholds (with / without
sentence-final punctuation) that maximises dev accuracy; the test set is only scored.
Also reports the LLM asked in free text (greedy answer) and punctuation alone, for comparison.

    .venv/bin/python bench/calibrate_completeness.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_report  # noqa: E402

from livetranslate.stages.completeness import SENTENCE_END, CompletenessChecker, CompletenessThresholds  # noqa: E402
from livetranslate.stages.llm import GenerationRequest, create_engine  # noqa: E402
from livetranslate.stages.llm.prompts import completeness_prompt  # noqa: E402
from livetranslate.weights.catalog import resolve  # noqa: E402

MODELS = {"qwen2.5-1.5b": "chatml", "gemma3-270m": "fewshot"}


def load(name):
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / name).read_text().splitlines()]
    return [r["text"] for r in rows], np.array([r["complete"] for r in rows])


def accuracy(decisions, labels) -> float:
    return float(np.mean(np.asarray(decisions) == labels))


def main():
    dev_x, dev_y = load("completeness_dev.jsonl")
    test_x, test_y = load("completeness_test.jsonl")
    grid = np.round(np.arange(0.05, 1.0, 0.025), 3)
    results = {}
    for model, family in MODELS.items():
        engine = create_engine("llama_cpp", str(resolve(model)))
        checker = CompletenessChecker(engine.yes_probability, family)
        dev_p = [checker.probability(t, "de") for t in dev_x]
        test_p = [checker.probability(t, "de") for t in test_x]
        best = (-1.0, None)
        for tp in grid:
            for tu in grid:
                checker.thresholds = CompletenessThresholds(float(tp), float(tu))
                acc = accuracy([checker.decide(t, p) for t, p in zip(dev_x, dev_p)], dev_y)
                # ties: prefer the more conservative (higher) thresholds
                if acc > best[0] + 1e-9 or (abs(acc - best[0]) < 1e-9 and tp + tu > sum(best[1])):
                    best = (acc, (float(tp), float(tu)))
        checker.thresholds = CompletenessThresholds(*best[1])
        free_text = []
        for t in test_x:
            answer = "".join(engine.generate(GenerationRequest(completeness_prompt(family, t, "de"), max_tokens=3)))
            free_text.append(answer.strip().lower().startswith(("yes", "ja")))
        results[model] = {
            "family": family,
            "thresholds": {"punctuated": best[1][0], "unpunctuated": best[1][1]},
            "dev_accuracy": round(best[0], 3),
            "test_accuracy": round(accuracy([checker.decide(t, p) for t, p in zip(test_x, test_p)], test_y), 3),
            "test_accuracy_p_yes_0.5_alone": round(accuracy([p >= 0.5 for p in test_p], test_y), 3),
            "test_accuracy_free_text_answer": round(accuracy(free_text, test_y), 3),
            "test_accuracy_punctuation_alone": round(
                accuracy([bool(SENTENCE_END.search(t)) for t in test_x], test_y), 3
            ),
            "test_auc": round(auc(test_p, test_y), 3),
        }
    lines = [
        "# Completeness check calibration\n",
        f"Measured {machine()['date']}. Dev set "
        f"{len(dev_x)} texts, test set {len(test_x)} texts (tests/data/completeness_*.jsonl, written by "
        f"hand: complete sentences, cut-off fragments, fragments with a Whisper-style period, complete "
        f"sentences without one). Thresholds chosen on dev only.\n",
        "| model | thresholds (punct. / none) | dev acc. | test acc. | test: P(yes)>=0.5 | test: free-text answer | test: punctuation only | test AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, r in results.items():
        lines.append(
            f"| {model} | {r['thresholds']['punctuated']} / {r['thresholds']['unpunctuated']} | "
            f"{r['dev_accuracy']:.0%} | {r['test_accuracy']:.0%} | {r['test_accuracy_p_yes_0.5_alone']:.0%} | "
            f"{r['test_accuracy_free_text_answer']:.0%} | {r['test_accuracy_punctuation_alone']:.0%} | {r['test_auc']} |"
        )
    write_report("completeness", {"machine": machine(), "results": results}, "\n".join(lines) + "\n")


def auc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


if __name__ == "__main__":
    main()
