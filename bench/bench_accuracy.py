"""Accuracy and time on both bench recordings, in one command, with the faster-whisper
anchors run beside the live pipeline in the same run:

- WER (numbers as written, and spelled out on both sides) of: faster-whisper on the whole
  file offline; faster-whisper on each utterance alone (its Silero segments, the two previous
  texts as prompt), with the decode time per utterance; the live pipeline through a real
  server, the file streamed in real time (default LLM, translation on);
- final-transcript latency p50 / p95, time to first partial;
- basic and enhanced translation chrF / BLEU (document level: the English reference of the
  whole recording), and the translator alone on the correct German (what is lost between
  the speech and the translation); translation and enhanced latency p50 / p95.

    .venv/bin/python bench/bench_accuracy.py [--smoke] [--llm qwen2.5-1.5b] [--only natural] [--out DIR]

Writes bench/results/accuracy.{md,json} (accuracy-smoke with --smoke: a short cut of each;
`--only` one recording, `--out` another folder: tests/test_bench_smoke.py runs the natural
recording's half-minute cut that way).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sacrebleu  # noqa: E402
from common import RESULTS, machine, percentiles, recordings, start_server, stream_timed, write_report  # noqa: E402

from livetranslate.audio import read_audio, resample  # noqa: E402
from livetranslate.protocol import EventKind  # noqa: E402
from livetranslate.quality.evaluation import wer_both  # noqa: E402
from livetranslate.weights.catalog import MODELS, resolve  # noqa: E402


def scores(hypothesis: str, reference: str) -> dict:
    return {
        "chrf": round(sacrebleu.corpus_chrf([hypothesis], [[reference]]).score, 1),
        "bleu": round(sacrebleu.corpus_bleu([hypothesis], [[reference]]).score, 1),
    }


def rounded(d: dict) -> dict:
    return {k: round(v, 3) for k, v in d.items()}


def offline(audio, engine) -> str:
    segments, _ = engine.model.transcribe(audio, language="de", beam_size=5, temperature=0.0, vad_filter=False)
    return " ".join(s.text.strip() for s in segments)


def per_utterance(audio, engine) -> tuple[str, list[float]]:
    """The naive loop: Silero's speech segments, each decoded alone with the two previous
    texts as prompt. Silero's default needs 2 s of silence to split; people leave 150-500 ms
    between turns, so 250 ms here (and at most 20 s per segment)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    texts, seconds = [], []
    for span in get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=250, max_speech_duration_s=20)):
        t0 = time.monotonic()
        segments, _ = engine.model.transcribe(
            audio[span["start"] : span["end"]],
            language="de",
            beam_size=5,
            temperature=0.0,
            vad_filter=False,
            initial_prompt=" ".join(texts[-2:]) or None,
        )
        texts.append(" ".join(s.text.strip() for s in segments))
        seconds.append(time.monotonic() - t0)
    return " ".join(texts), seconds


def translator_alone(german: list[str], llm: str) -> str:
    from livetranslate.stages.llm import create_engine
    from livetranslate.stages.translate import Translator

    engine = create_engine("llama_cpp", str(resolve(llm)))
    translator = Translator(lambda r: "".join(engine.generate(r)), MODELS[llm].prompt_family)
    return " ".join(translator.translate(s, "de", "en") for s in german)


def first_partial_s(received) -> list[float]:
    """Per utterance: from the start of its speech (audio time, which is the stream's clock
    when streamed in real time) to its first partial."""
    seen, out = set(), []
    for t, e in received:
        if e.kind == EventKind.PARTIAL and e.segment_id not in seen:
            seen.add(e.segment_id)
            out.append(t - e.start_s)
    return out


def first_translated_words_ms(received) -> list[float]:
    """Per translated utterance: from the end of its speech to its first translated words
    (its first `partial_translation`, else the translation itself)."""
    first: dict[int, float] = {}
    for _, e in received:
        if e.kind in (EventKind.PARTIAL_TRANSLATION, EventKind.TRANSLATION) and e.text and not e.error:
            first.setdefault(e.segment_id, e.latency_ms)
    return list(first.values())


def what_a_reader_keeps(received, language: str = "en") -> str:
    """The translation a reader ends up with, as exports give it by default (livetranslate.present.export,
    `best`): each sentence's translation, replaced by the enhanced translation of the window
    that covers it when there is one. Windows the server skipped leave their sentences'
    translations standing."""
    from livetranslate.present.export import lines

    return " ".join(text for _, _, text in lines([e for _, e in received], "target", language, "best"))


def after_transcript_s(received) -> list[float]:
    """Per translation: from its transcript's arrival to its own."""
    transcripts = {e.segment_id: t for t, e in received if e.kind == EventKind.TRANSCRIPT}
    return [
        t - transcripts[e.segment_id]
        for t, e in received
        if e.kind == EventKind.TRANSLATION and e.segment_id in transcripts and not e.error
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--llm", default="qwen2.5-1.5b")
    parser.add_argument("--only", choices=("espeak", "natural"), help="one recording, not both")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the report's folder")
    args = parser.parse_args()

    from livetranslate.stages.whisper import create_engine

    engine = create_engine("ctranslate2", resolve("whisper-base"))
    data = {"machine": machine(), "llm": args.llm, "recordings": {}}
    runs = [rec for rec in recordings(smoke=args.smoke) if args.only in (None, rec.name)]
    for rec in runs:  # the anchors first, with the CPU to themselves
        pcm, rate = read_audio(rec.path)
        audio = resample(pcm.astype("float32") / 32768, rate)
        german, english = " ".join(rec.german), " ".join(rec.english)
        t0 = time.monotonic()
        off = offline(audio, engine)
        off_s = time.monotonic() - t0
        utt, utt_s = per_utterance(audio, engine)
        data["recordings"][rec.name] = {
            "about": rec.about,
            "audio_s": round(len(pcm) / rate, 1),
            "utterances": len(rec.german),
            "wer": {"offline": rounded(wer_both(german, off)), "per_utterance": rounded(wer_both(german, utt))},
            "offline_rtf": round(off_s / (len(pcm) / rate), 3),
            "per_utterance_decode_s": percentiles(utt_s),
            "translator_alone": scores(translator_alone(rec.german, args.llm), english),
        }
    del engine
    server = start_server("bench-accuracy", llm=args.llm)
    try:
        for rec in runs:
            received, _, _ = stream_timed(server.grpc_url, rec.path, realtime=True, session=f"accuracy-{rec.name}")
            r = data["recordings"][rec.name]
            german, english = " ".join(rec.german), " ".join(rec.english)

            def of(kind):
                return [e for _, e in received if e.kind == kind]

            transcripts, translations, enhanced = (
                of(k) for k in (EventKind.TRANSCRIPT, EventKind.TRANSLATION, EventKind.ENHANCED)
            )
            r["wer"]["live"] = rounded(wer_both(german, " ".join(e.text for e in transcripts)))
            r["latency_ms"] = {
                "transcript": percentiles([e.latency_ms for e in transcripts]),
                "translation": percentiles([e.latency_ms for e in translations if e.text]),
                "enhanced": percentiles([e.latency_ms for e in enhanced if e.text]),
            }
            r["time_to_first_partial_s"] = percentiles(first_partial_s(received))
            r["latency_ms"]["first_translated_words"] = percentiles(first_translated_words_ms(received))
            r["translation_after_transcript_s"] = percentiles(after_transcript_s(received))
            r["small_model_translations"] = sum(bool(e.note) for e in translations if e.text)
            r["translation"] = {
                "basic": scores(" ".join(e.text for e in translations), english),
                "enhanced": scores(" ".join(e.text for e in enhanced), english),
                "reader": scores(what_a_reader_keeps(received), english),
                "enhanced_windows": len([e for e in enhanced if e.text]),
                "failed": sum(bool(e.error) for e in translations),
            }
            print(rec.name, r)
    finally:
        server.stop()
    write_report("accuracy-smoke" if args.smoke else "accuracy", data, render(data), args.out)


def render(d: dict) -> str:
    lines = [
        "# Accuracy and time on both recordings\n",
        f"Measured {d['machine']['date']} on {d['machine']['cpus']} CPUs. Whisper base (int8, beam 5) "
        f"everywhere; LLM {d['llm']} (the translator alone, the enhanced translations; the speaker's "
        f"translations come from the small model, Gemma 3 270M, by default). WER: numbers as written / spelled out on both sides (num2words). "
        f"Live: the file streamed in real time through a real server, translation on, partials on; "
        f"the anchors ran in the same run, before it.\n",
    ]
    for name, r in d["recordings"].items():
        w, lat = r["wer"], r.get("latency_ms", {})
        lines += [
            f"## {name}: {r['about']}, {r['audio_s']} s, {r['utterances']} utterances\n",
            "| | WER raw | WER numbers spelled out | final latency p50 / p95 ms |",
            "|---|---|---|---|",
            f"| faster-whisper, whole file offline | {w['offline']['wer']:.1%} | "
            f"{w['offline']['wer_numbers']:.1%} | – |",
            f"| faster-whisper, each Silero utterance alone (250 ms silence splits), 2 texts as prompt | {w['per_utterance']['wer']:.1%} "
            f"| {w['per_utterance']['wer_numbers']:.1%} | decode {r['per_utterance_decode_s'].get('p50')} / "
            f"{r['per_utterance_decode_s'].get('p95')} s per utterance |",
        ]
        if "live" in w:
            t = lat["transcript"]
            lines.append(
                f"| livetranslate live | {w['live']['wer']:.1%} | {w['live']['wer_numbers']:.1%} | "
                f"{t.get('p50')} / {t.get('p95')} |"
            )
            tr, en = r["translation"], lat
            fp = r["time_to_first_partial_s"]
            lines += [
                "",
                f"Time from the start of an utterance to its first partial: p50 {fp.get('p50')} s, p95 {fp.get('p95')} s.",
                "",
                "| translation | chrF | BLEU | latency p50 / p95 ms |",
                "|---|---|---|---|",
                f"| translator alone on the correct German | {r['translator_alone']['chrf']} | "
                f"{r['translator_alone']['bleu']} | – |",
                f"| basic (`translation`) | {tr['basic']['chrf']} | {tr['basic']['bleu']} | "
                f"{en['translation'].get('p50')} / {en['translation'].get('p95')} |",
                f"| enhanced (`enhanced`) | {tr['enhanced']['chrf']} | {tr['enhanced']['bleu']} | "
                f"{en['enhanced'].get('p50')} / {en['enhanced'].get('p95')} |",
            ]
            if "reader" in tr:
                lines.append(
                    f"| what a reader keeps (enhanced where a window came, else basic) | "
                    f"{tr['reader']['chrf']} | {tr['reader']['bleu']} | – |"
                )
            lines.append("")
            if "first_translated_words" in en:
                fw, at = en["first_translated_words"], r["translation_after_transcript_s"]
                lines += [
                    f"First translated words (interim translation) after the end of speech: p50 "
                    f"{fw.get('p50')} / p95 {fw.get('p95')} ms. A translation after its transcript: p50 "
                    f"{at.get('p50')} / max {at.get('max')} s. Marked as made by the small model because the "
                    f"stream was behind (`basic_model auto` only): {r['small_model_translations']} of "
                    f"{en['translation'].get('n', 0)}.",
                    "",
                ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
