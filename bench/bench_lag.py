"""How far the translations fall behind with 1, 2 and 3 real-time streams on one server, and
what the llm's lanes change (livetranslate.stages.llm.lanes), in one run:

- `one context, large model`: one llama.cpp context serves everything in turn, no small
  model (the scheduling before the lanes);
- `lanes, large model`: the speaker's translations on their own context, background work
  pauses for them;
- `lanes, auto` (the default): the large model, and a translation expected later than the
  pipeline's budget is made by the small model (marked);
- `lanes, small model` (the default before): the small model makes every speaker's
  translation, the large one the enhanced translations.

Each setting gets one server (default LLM); the streams are copies of the natural recording
(its first --seconds), sent in real time, all at once. Per setting and number of streams:
final transcript latency; translation latency after the end of speech and after its
transcript; the first translated words (`partial_translation`); enhanced latency; the share
made by the small model; the first English's chrF per stream (against the reference of what
the first --seconds say) and the partials each stream got.

    .venv/bin/python bench/bench_lag.py [--seconds 90] [--streams 1,2,3] [--smoke]

Writes bench/results/lag.{md,json}. With --speakers: the default setting only, every stream
without and with speaker labels on one server, A B B A (bench/results/lag-speakers.{md,json}).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import sacrebleu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, percentiles, recordings, start_server, stream_many, write_report  # noqa: E402

from livetranslate.launcher import DEFAULT_MODEL_REPOSITORY  # noqa: E402
from livetranslate.protocol import EventKind  # noqa: E402

SETTINGS = {
    "one context, large model": {
        "llm": {"urgent_context": "false", "fast_model": ""},
        "translate": {"fast_llm_model": ""},
        "pipeline": {"basic_model": "large"},
    },
    "lanes, large model": {"pipeline": {"basic_model": "large"}},
    "lanes, auto: large unless late (the default)": {},
    "lanes, small model (the default before)": {
        "llm": {"urgent_context": "false"},
        "pipeline": {"basic_model": "small"},
    },
}
DEFAULT_SETTING = "lanes, auto: large unless late (the default)"
TUNED_SPEAKERS = (
    "Nothing was tuned on this recording: the two changes between the states below (where the "
    "speaker embedding is made, and one OpenBLAS thread per model) were made after seeing the first "
    "runs here, but they set no figure fitted to it; no other recording was run."
)


def repository(changes: dict[str, dict[str, str]]) -> Path:
    """A copy of the model repository with some config parameters changed."""
    repo = Path(tempfile.mkdtemp(prefix="livetranslate-lag-")) / "model_repository"
    shutil.copytree(DEFAULT_MODEL_REPOSITORY, repo, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for model, params in changes.items():
        config = repo / model / "config.pbtxt"
        text = config.read_text()
        for key, value in params.items():
            text, n = re.subn(rf'(key: "{key}", value: {{ string_value: )"[^"]*"', rf'\1"{value}"', text)
            assert n == 1, f"{model}: no parameter {key}"
        config.write_text(text)
    return repo


def measure(url: str, path: Path, streams: int, seconds: float, english: str = "", speakers: bool = False) -> dict:
    """`english`: the reference of what is said in the first `seconds` (the first English's chrF)."""
    session = f"lag-{uuid.uuid4().hex[:6]}"
    results = stream_many(url, path, streams, session=session, realtime=True, seconds=seconds, speakers=speakers)
    partials = [sum(1 for _, e in received if e.kind == EventKind.PARTIAL) for received, _, _ in results]
    chrf = (
        [
            round(
                sacrebleu.corpus_chrf(
                    [" ".join(e.text for _, e in received if e.kind == EventKind.TRANSLATION)], [[english]]
                ).score,
                1,
            )
            for received, _, _ in results
        ]
        if english
        else []
    )
    transcript, translation, after_transcript, first_words, enhanced = [], [], [], [], []
    small = failed = total = 0
    for received, _, _ in results:
        events = [e for _, e in received]
        arrived = {id(e): t for t, e in received}
        transcripts = {e.segment_id: e for e in events if e.kind == EventKind.TRANSCRIPT}
        seen_interim: set[int] = set()
        for e in events:
            if e.kind == EventKind.TRANSCRIPT:
                transcript.append(e.latency_ms / 1000)
            elif e.kind == EventKind.PARTIAL_TRANSLATION and e.segment_id not in seen_interim:
                seen_interim.add(e.segment_id)
                first_words.append(e.latency_ms / 1000)
            elif e.kind == EventKind.TRANSLATION:
                total += 1
                if e.error:
                    failed += 1
                    continue
                small += bool(e.note)
                translation.append(e.latency_ms / 1000)
                t = transcripts.get(e.segment_id)
                if t is not None:
                    after_transcript.append(arrived[id(e)] - arrived[id(t)])
                if e.segment_id not in seen_interim:  # no interim: the first words are the translation
                    first_words.append(e.latency_ms / 1000)
            elif e.kind == EventKind.ENHANCED and not e.error:
                enhanced.append(e.latency_ms / 1000)
    return {
        "streams": streams,
        "speakers": speakers,
        "labelled": sum(
            1 for received, _, _ in results for _, e in received if e.kind == EventKind.TRANSCRIPT and e.speaker
        ),
        "translations": total,
        "failed": failed,
        "small_model": small,
        "transcript_s": percentiles(transcript),
        "translation_s": percentiles(translation),
        "after_transcript_s": percentiles(after_transcript),
        "first_words_s": percentiles(first_words),
        "enhanced_s": percentiles(enhanced),
        "partials_per_stream": partials,
        "chrf_first": chrf,
    }


def row(name: str, r: dict) -> str:
    def pp(d: dict, keys=("p50", "p95")) -> str:
        return " / ".join(f"{d[k]:.1f}" for k in keys) if d.get("n") else "–"

    share = f"{r['small_model']}/{r['translations'] - r['failed']}"
    partials = "/".join(str(n) for n in r.get("partials_per_stream", [])) or "–"
    chrf = "/".join(str(c) for c in r.get("chrf_first", [])) or "–"
    return (
        f"| {name} | {r['streams']} | {pp(r['transcript_s'])} | {pp(r['translation_s'], ('p50', 'p95', 'max'))} | "
        f"{pp(r['after_transcript_s'], ('p50', 'max'))} | {pp(r['first_words_s'])} | {pp(r['enhanced_s'])} | "
        f"{share} | {r['failed']} | {chrf} | {partials} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--streams", default="1,2,3")
    parser.add_argument("--settings", default=";".join(SETTINGS), help="names separated by ;")
    parser.add_argument("--smoke", action="store_true", help="20 s, 1 stream, the default setting only")
    parser.add_argument("--speakers", action="store_true", help="the default setting, labels off and on, A B B A")
    args = parser.parse_args()
    counts = [int(n) for n in args.streams.split(",")]
    names = args.settings.split(";")
    if args.smoke:
        args.seconds, counts, names = 20.0, [1], [DEFAULT_SETTING]
    natural = next(r for r in recordings() if r.name == "natural")
    data = {"machine": machine(), "recording": natural.about, "seconds": args.seconds, "settings": {}}
    if args.speakers:
        return with_speakers(data, natural, counts, args.seconds)
    for name in names:
        server = start_server("bench-lag", model_repository=repository(SETTINGS[name]))
        try:
            said = " ".join(en for en, (_, end) in zip(natural.english, natural.spans_s) if end <= args.seconds)
            data["settings"][name] = [measure(server.grpc_url, natural.path, n, args.seconds, said) for n in counts]
        finally:
            server.stop()
        print(name, data["settings"][name], flush=True)
    lines = [
        "# Translation lag with several real-time streams",
        "",
        f"Measured {data['machine']['date']} on {data['machine']['cpus']} CPUs, default models (Whisper base, "
        f"Qwen 2.5 1.5B; small model Gemma 3 270M). Each stream: the first {args.seconds:.0f} s of the natural "
        f"recording ({natural.about}), in real time, all streams at once on one server. Seconds; latencies from "
        f"the end of speech (the arrival of its audio). Nothing was tuned on this recording.",
        "",
        "| setting | streams | transcript p50 / p95 | translation p50 / p95 / max | after its transcript p50 / max "
        '| first translated words p50 / p95 | enhanced p50 / p95 | marked "small model, behind" (auto only) | failed '
        "| first English chrF per stream | partials per stream |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(name, r) for name in names for r in data["settings"][name]]
    write_report("lag-smoke" if args.smoke else "lag", data, "\n".join(lines) + "\n")


def with_speakers(data: dict, natural, counts: list[int], seconds: float) -> None:
    """The default setting on one server: each number of streams without labels, with, with,
    without (A B B A: a drift of the shared machine shows as a difference between the two As)."""
    server = start_server("bench-lag-speakers", model_repository=repository({}))
    said = " ".join(en for en, (_, end) in zip(natural.english, natural.spans_s) if end <= seconds)
    runs = []
    try:
        for n in counts:
            for speakers in (False, True, True, False):
                runs.append(measure(server.grpc_url, natural.path, n, seconds, said, speakers=speakers))
                print(n, speakers, runs[-1], flush=True)
    finally:
        server.stop()
    data["runs"] = runs
    lines = [
        "# Speaker labels under load: several real-time streams, labels off and on",
        "",
        f"Measured {data['machine']['date']} on {data['machine']['cpus']} CPUs by `bench/bench_lag.py --speakers`, "
        f"the default setting (as `lag.md`'s first rows). Each stream: the first {seconds:.0f} s of the natural "
        f"recording ({natural.about}), in real time, all streams at once on one server, without speaker labels "
        "and with them (the `speakers` model and the stream's clustering), in the order off, on, on, off. "
        "Seconds; latencies from the end of speech. " + TUNED_SPEAKERS,
        "",
        "| labels | streams | labelled lines | transcript p50 / p95 | translation p50 / p95 / max "
        '| after its transcript p50 / max | first translated words p50 / p95 | enhanced p50 / p95 | marked "small '
        'model, behind" | failed | first English chrF per stream | partials per stream |',
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        cells = row("on" if r["speakers"] else "off", r).split(" | ")
        lines.append(" | ".join(cells[:2] + [str(r["labelled"])] + cells[2:]))
    write_report("lag-speakers", data, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
