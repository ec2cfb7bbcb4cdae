"""Figures: term accuracy with and without a session glossary.

The recording (livetranslate/quality/samples_glossary.py): 12 German sentences by espeak-ng, three
voices, with invented names and product terms, each term said three times; its glossary
names the six terms, one with an English translation (Kelvaro Fühler = Kelvaro Probe).
Term accuracy = the terms' occurrences spelled exactly right (case included), out of those
in the reference: the German sentences for transcripts, the hand-written English for
translations.

A. Whisper alone (whisper-base, CTranslate2, in this process), the reference utterances
   decoded one after another as the pipeline does (context policy: the committed text of
   the audio before as prefix): no glossary; the terms as faster-whisper's `hotwords` would
   give them (only to requests without a prefix, its rule); the terms before the prompt of
   every request (what livetranslate does).
B. The translator alone (each LLM, in this process) on the correct German sentences, with
   and without the glossary's pairs: what the translation prompt does by itself.
C. Live, through Triton: the recording streamed with and without `--glossary`; term accuracy
   of transcripts, translations and enhanced translations, WER and chrF beside it.

    .venv/bin/python bench/bench_glossary.py [--llm qwen2.5-1.5b]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sacrebleu  # noqa: E402
from common import DATA, RESULTS, machine, start_server, write_report  # noqa: E402

from livetranslate import glossary as G  # noqa: E402
from livetranslate.audio import chunks, pcm16_to_float, read_audio, resample  # noqa: E402
from livetranslate.client import PipelineClient  # noqa: E402
from livetranslate.pipeline.streaming import AudioHistory, DecodeOptions, StreamDecoder  # noqa: E402
from livetranslate.protocol import SAMPLE_RATE_HZ, EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.evaluation import term_accuracy, wer  # noqa: E402
from livetranslate.quality.samples import load_reference  # noqa: E402
from livetranslate.quality.samples_glossary import TERMS_DE, TERMS_EN, make_terms_recording  # noqa: E402
from livetranslate.stages.whisper import SpeechFilter  # noqa: E402
from livetranslate.weights.catalog import resolve  # noqa: E402


def whisper_alone(path: Path, glossary: G.Glossary) -> dict:
    from livetranslate.stages.whisper import create_engine

    engine = create_engine("ctranslate2", resolve("whisper-base"))
    pcm, rate = read_audio(path)
    history = AudioHistory(keep_s=3600)
    history.append(resample(pcm16_to_float(pcm), rate))
    terms = [t.source for t in glossary.terms]
    variants = {
        "none": ("", False),
        "faster-whisper hotwords (no prefix only)": (glossary.whisper_hint(), True),
        "terms before every prompt (livetranslate)": (glossary.whisper_hint(), False),
    }
    out = {}
    for name, (hint, only_without_prefix) in variants.items():
        decoder = StreamDecoder(DecodeOptions(), "de", hint)
        texts, started = [], time.monotonic()
        for u in load_reference(path):  # as the pipeline's audio worker does (transcriber.py)
            start, end = int(u.start_s * SAMPLE_RATE_HZ), int((u.end_s + 0.3) * SAMPLE_RATE_HZ)
            result, text = decode(engine, decoder, history, start, end, only_without_prefix)
            text = text if SpeechFilter().keep(result) else ""
            decoder.commit(start, end, text)
            texts.append(text)
        out[name] = {
            **term_accuracy(terms, TERMS_DE, texts),
            "wer": round(wer(" ".join(TERMS_DE), " ".join(texts)), 3),
            "s": round(time.monotonic() - started, 1),
            "transcripts": texts,
        }
    return out


def decode(engine, decoder: StreamDecoder, history: AudioHistory, start: int, end: int, only_without_prefix: bool):
    """One utterance decoded as the pipeline decodes it: with context, again without when
    Whisper copied its prefix. `only_without_prefix`: faster-whisper's rule for `hotwords`."""
    for use_context in (True, False):
        plan = decoder.plan(history, start, end, use_context=use_context)
        request = plan.request
        if only_without_prefix and request.prefix:
            request = dataclasses.replace(request, hotwords="")
        result = engine.transcribe([request])[0]
        if not use_context or not decoder.retry_without_context(plan, result.text):
            return result, decoder.clean(plan, result.text)
    raise AssertionError("unreachable")


def translator_alone(model: str, glossary: G.Glossary) -> dict:
    from livetranslate.stages.llm import create_engine
    from livetranslate.stages.translate import Translator
    from livetranslate.weights.catalog import MODELS

    engine = create_engine("llama_cpp", str(resolve(model)))
    translator = Translator(lambda r: "".join(engine.generate(r)), MODELS[model].prompt_family)
    targets = [t.translation for t in glossary.terms]
    out = {}
    for name, given in (("without", G.NO_GLOSSARY), ("with", glossary)):
        started = time.monotonic()
        texts = [translator.translate(s, "de", "en", "", given) for s in TERMS_DE]
        out[name] = {
            **term_accuracy(targets, TERMS_EN, texts),
            "chrf": round(sacrebleu.corpus_chrf([" ".join(texts)], [[" ".join(TERMS_EN)]]).score, 1),
            "ms_per_sentence": round((time.monotonic() - started) * 1000 / len(texts)),
            "translations": texts,
        }
    return out


def live(url: str, path: Path, glossary: G.Glossary, session: str, realtime: bool) -> dict:
    pcm, rate = read_audio(path)
    options = SessionOptions(session, rate, "de", "en", partials=False, glossary=glossary)
    with PipelineClient(url) as client:
        events = list(client.stream(chunks(pcm, rate // 10), options, realtime=realtime))
        info = client.sessions("get", session)["info"]
    texts = {
        k: [e.text for e in events if e.kind == k and not e.error]
        for k in (EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.ENHANCED)
    }
    source_terms = [t.source for t in G.load(path.with_suffix(".glossary.txt")).terms]
    target_terms = [t.translation for t in G.load(path.with_suffix(".glossary.txt")).terms]
    english = " ".join(TERMS_EN)
    return {
        "transcript": {
            **term_accuracy(source_terms, TERMS_DE, texts[EventKind.TRANSCRIPT]),
            "wer": round(wer(" ".join(TERMS_DE), " ".join(texts[EventKind.TRANSCRIPT])), 3),
        },
        "translation": {
            **term_accuracy(target_terms, TERMS_EN, texts[EventKind.TRANSLATION]),
            "chrf": round(sacrebleu.corpus_chrf([" ".join(texts[EventKind.TRANSLATION])], [[english]]).score, 1),
        },
        "enhanced": {
            **term_accuracy(target_terms, TERMS_EN, texts[EventKind.ENHANCED]),
            "chrf": round(sacrebleu.corpus_chrf([" ".join(texts[EventKind.ENHANCED])], [[english]]).score, 1),
        },
        "errors": [e.text or e.error for e in events if e.kind == EventKind.ERROR or e.error],
        "session_glossary": info.get("glossary", []),
        "texts": {k.value: v for k, v in texts.items()},
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", nargs="+", default=["qwen2.5-1.5b", "gemma3-270m"])
    parser.add_argument("--skip-alone", action="store_true", help="only the live part")
    parser.add_argument("--fast", action="store_true", help="stream as fast as the server takes it, not in real time")
    parser.add_argument("--report-only", action="store_true", help="write glossary.md again from glossary.json")
    args = parser.parse_args()
    if args.report_only:
        write(json.loads((RESULTS / "glossary.json").read_text()))
        return

    path, glossary_file = make_terms_recording(DATA)
    glossary = G.load(glossary_file)
    data = {
        "machine": machine(),
        "llms": args.llm,
        "realtime": not args.fast,
        "glossary": glossary.to_list(),
        "live": {},
    }
    if not args.skip_alone:
        data["whisper_alone"] = whisper_alone(path, glossary)
        data["translator_alone"] = {m: translator_alone(m, glossary) for m in ("qwen2.5-1.5b", "gemma3-270m")}
    for llm in args.llm:
        server = start_server("bench-glossary", llm=llm)
        try:
            data["live"][llm] = {
                "without": live(server.grpc_url, path, G.NO_GLOSSARY, "terms-without", not args.fast),
                "with": live(server.grpc_url, path, glossary, "terms-with", not args.fast),
            }
        finally:
            server.stop()
    write(data)


def pct(score: dict) -> str:
    return f"{score['right']}/{score['expected']} ({100 * score['accuracy']:.0f} %)"


def write(data: dict) -> None:
    lines = [
        "# Glossary: term accuracy before and after\n",
        f"Measured {data['machine']['date']} on {data['machine']['cpus']} CPUs by `bench/bench_glossary.py`. "
        "The recording: 12 German sentences by espeak-ng (3 voices, noise at -45 dBFS) with six invented names "
        "and product terms, each said three times (`livetranslate/quality/samples_glossary.py`). Its glossary:\n",
        "```",
        G.Glossary(tuple(G.Term(t["term"], t["translation"]) for t in data["glossary"])).to_text().rstrip(),
        "```\n",
        "Term accuracy: occurrences of the terms spelled exactly right (case included) out of the 18 in the "
        "reference (German sentences for transcripts, hand-written English for translations). Whisper base "
        "on espeak-ng's voices is weak (the WER columns), which is what makes the names hard. Times are from "
        "a machine shared with other servers: compare them within one run only.\n",
    ]
    if "whisper_alone" in data:
        lines += [
            "## A. Whisper alone (whisper-base, CTranslate2, decoded as the pipeline's audio worker does)\n",
            "| terms given to Whisper | terms right | read back beyond the reference | WER |",
            "|---|---|---|---|",
            *[f"| {name} | {pct(r)} | {r['extra']} | {r['wer']:.3f} |" for name, r in data["whisper_alone"].items()],
            "",
        ]
    if "translator_alone" in data:
        lines += [
            "## B. The translator alone, on the correct German sentences\n",
            "| LLM | glossary | terms right | Kelvaro Probe right | chrF | ms per sentence |",
            "|---|---|---|---|---|---|",
            *[
                f"| {m} | {name} | {pct(r)} | {r['terms']['Kelvaro Probe']['right']}/3 | {r['chrf']} | "
                f"{r['ms_per_sentence']} |"
                for m, runs in data["translator_alone"].items()
                for name, r in runs.items()
            ],
            "",
        ]
    pace = "in real time" if data["realtime"] else "as fast as it goes"
    lines += [
        f"## C. Live, through Triton (whisper-base), the recording streamed {pace}\n",
        "| LLM | glossary | transcripts: terms right | translations: terms right | enhanced: terms right "
        "| transcript WER | translation chrF |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {llm} | {name} | {pct(r['transcript'])} | {pct(r['translation'])} | {pct(r['enhanced'])} | "
            f"{r['transcript']['wer']:.3f} | {r['translation']['chrf']} |"
            for llm, runs in data["live"].items()
            for name, r in runs.items()
        ],
        "",
    ]
    for llm, runs in data["live"].items():
        lines += [
            f"Per term, {llm} (transcripts / translations, right out of 3):\n",
            "| term | without | with |",
            "|---|---|---|",
        ]
        for t in data["glossary"]:
            target = t["translation"] or t["term"]
            cells = [
                f"{r['transcript']['terms'][t['term']]['right']} / {r['translation']['terms'][target]['right']}"
                for r in (runs["without"], runs["with"])
            ]
            lines.append(f"| {t['term']}{' → ' + target if t['translation'] else ''} | {cells[0]} | {cells[1]} |")
        lines += [
            "",
            f"Errors: without {len(runs['without']['errors'])}, with {len(runs['with']['errors'])}. "
            f"Terms read back beyond the reference (transcripts, with): {runs['with']['transcript']['extra']}. "
            f"The session streamed with the glossary lists {len(runs['with']['session_glossary'])} terms in its "
            "stored metadata.\n",
        ]
    lines += ["The transcripts and translations of every run are in glossary.json."]
    write_report("glossary", data, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
