"""Figures: translation quality, latency and capacity with translation on.

A. Text only: each LLM translates the correct German reference sentences (the translator
   alone, no ASR errors), BLEU/chrF against the hand-written English references.
B. Through Triton with the default LLM (Qwen 1.5B): the 36-sentence meeting streamed in real
   time; BLEU/chrF of the basic and the enhanced translations (document level: segments
   and sentences do not align one to one), latency from end of speech to `translation` and
   to `enhanced`.
C. Capacity: N concurrent real-time streams of a 24 s file with translation on; a
   stream is sustained while the translation latency p95 stays under 6 s.

    .venv/bin/python bench/bench_translation.py [--llm qwen2.5-1.5b] [--max-streams 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sacrebleu  # noqa: E402
from common import DATA, machine, percentiles, start_server, stream_timed, write_report  # noqa: E402

from livetranslate.protocol import EventKind  # noqa: E402
from livetranslate.quality.samples import (  # noqa: E402
    MEETING_DE,
    MEETING_EN,
    SENTENCES_DE,
    SENTENCES_EN,
    make_all,
    make_meeting,
)
from livetranslate.stages.llm import create_engine  # noqa: E402
from livetranslate.stages.translate import Translator  # noqa: E402
from livetranslate.weights.catalog import MODELS, resolve  # noqa: E402

SUSTAINED_P95_MS = 6000


def scores(hypotheses: list[str], references: list[str]) -> dict:
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 1),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 1),
    }


def text_only(model: str) -> dict:
    engine = create_engine("llama_cpp", str(resolve(model)))
    translator = Translator(lambda r: "".join(engine.generate(r)), MODELS[model].prompt_family)
    german, english = MEETING_DE + SENTENCES_DE, MEETING_EN + SENTENCES_EN
    started = time.monotonic()
    out = [translator.translate(s, "de", "en") for s in german]
    ms = (time.monotonic() - started) * 1000 / len(german)
    return {**scores(out, english), "ms_per_sentence": round(ms), "sentences": len(german)}


def of(received, kind):
    return [e for _, e in received if e.kind == kind]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", default="qwen2.5-1.5b")
    parser.add_argument("--max-streams", type=int, default=3)
    args = parser.parse_args()

    data = {
        "machine": machine(),
        "llm": args.llm,
        "text_only": {m: text_only(m) for m in ("qwen2.5-1.5b", "gemma3-270m")},
    }

    meeting = make_meeting(DATA)
    short = make_all(DATA)["speech"]
    reference_doc = [" ".join(MEETING_EN)]
    server = start_server("bench-translation", llm=args.llm)
    try:
        live, _, audio_s = stream_timed(server.grpc_url, meeting, realtime=True, session="meeting")
        transcripts, translations, enhanced = (
            of(live, k) for k in (EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.ENHANCED)
        )
        data["stream"] = {
            "audio_s": round(audio_s, 1),
            "segments": len(transcripts),
            "basic": scores([" ".join(e.text for e in translations)], reference_doc),
            "enhanced": scores([" ".join(e.text for e in enhanced)], reference_doc),
            "enhanced_events": len(enhanced),
            "translation_errors": sum(bool(e.error) for e in translations),
            "latency_ms": {
                "transcript": percentiles([e.latency_ms for e in transcripts]),
                "translation": percentiles([e.latency_ms for e in translations if not e.error]),
                "enhanced": percentiles([e.latency_ms for e in enhanced]),
            },
        }
        capacity = []
        for n in range(1, args.max_streams + 1):
            results = [None] * n

            def run(i):
                results[i], _, _ = stream_timed(server.grpc_url, short, realtime=True, session=f"cap{n}-{i}")

            threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            lat = percentiles([e.latency_ms for r in results for e in of(r, EventKind.TRANSLATION)])
            tr = percentiles([e.latency_ms for r in results for e in of(r, EventKind.TRANSCRIPT)])
            capacity.append(
                {
                    "streams": n,
                    "translation_latency_ms": lat,
                    "transcript_latency_ms": tr,
                    "sustained": lat.get("p95", 1e9) < SUSTAINED_P95_MS,
                }
            )
            if not capacity[-1]["sustained"]:
                break
        data["capacity"] = capacity
    finally:
        server.stop()

    s = data["stream"]
    lines = [
        "# Translation\n",
        f"Measured {data['machine']['date']} on {data['machine']['cpus']} CPUs. sacrebleu BLEU/chrF; references are "
        f"hand-written English for the espeak-ng German sentences in `livetranslate/quality/samples.py`.\n",
        "## A. Translator alone, on the correct German text (44 sentences)\n",
        "| LLM | BLEU | chrF | ms per sentence |",
        "|---|---|---|---|",
        *[f"| {m} | {r['bleu']} | {r['chrf']} | {r['ms_per_sentence']} |" for m, r in data["text_only"].items()],
        f"\n## B. Live, through Triton ({args.llm}), {s['audio_s']:.0f} s meeting in real time, {s['segments']} segments\n",
        "| output | BLEU | chrF |",
        "|---|---|---|",
        f"| basic (`translation`, per segment) | {s['basic']['bleu']} | {s['basic']['chrf']} |",
        f"| enhanced (`enhanced`, {s['enhanced_events']} windows) | {s['enhanced']['bleu']} | {s['enhanced']['chrf']} |",
        "\n| latency from end of speech | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|",
        *[f"| {k} | {v.get('p50')} | {v.get('p95')} | {v.get('max')} |" for k, v in s["latency_ms"].items()],
        f"\nTranslation errors: {s['translation_errors']}. The live scores include Whisper base's errors on "
        f"espeak audio (compare with A for the translator alone).\n",
        f"## C. Concurrent real-time streams with translation on ({args.llm})\n",
        "| streams | transcript p95 ms | translation p50 ms | translation p95 ms | sustained (p95 < 6 s) |",
        "|---|---|---|---|---|",
        *[
            f"| {c['streams']} | {c['transcript_latency_ms'].get('p95')} | {c['translation_latency_ms'].get('p50')} | "
            f"{c['translation_latency_ms'].get('p95')} | {'yes' if c['sustained'] else 'no'} |"
            for c in data["capacity"]
        ],
    ]
    write_report("translation", data, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
