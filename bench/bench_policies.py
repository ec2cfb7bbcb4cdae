"""Trade-off: WER against Whisper time per utterance for the decoding policies and
their context settings, on the bench recording, with the pipeline's stream logic in this
process (same VAD segments, same engine; no server, audio as fast as it goes). The final
transcript's latency is about the VAD's 300 ms hangover plus one decode, so the seconds per
decode column is what each setting costs in latency on this machine.

    .venv/bin/python bench/bench_policies.py          # ~15 min; writes bench/results/policies.{md,json}
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_streaming import in_process, offline  # noqa: E402
from common import DATA, machine, write_report  # noqa: E402

import livetranslate.whisper.ctranslate2 as ct2  # noqa: E402
from livetranslate.whisper import AsrOptions, create_engine  # noqa: E402
from livetranslate.evaluation import wer  # noqa: E402
from livetranslate.models import resolve  # noqa: E402
from livetranslate.samples import load_reference, make_bench_recording, make_meeting  # noqa: E402
from livetranslate.streaming import DecodeOptions  # noqa: E402

DEFAULT_TAIL_S = ct2.ENCODER_TAIL_S

# (name, decode options, encoder window in s for requests with a prefix / without one;
# AUDIO_PLUS_2S: the audio and 2 s of silence, nothing more)
AUDIO_PLUS_2S = 0.0
DEFAULT = (AsrOptions.min_window_s, AsrOptions.min_window_alone_s)
SETTINGS = [
    ("utterance, no lead-in", DecodeOptions(policy="utterance", lead_in_s=0.0), DEFAULT),
    ("utterance (1 s lead-in)", DecodeOptions(policy="utterance"), DEFAULT),
    ("utterance (1 s lead-in), 20 s encoder", DecodeOptions(policy="utterance"), (20.0, 20.0)),
    ("context 5 s", DecodeOptions(context_s=5.0), DEFAULT),
    ("context 10 s", DecodeOptions(context_s=10.0), DEFAULT),
    ("context 10 s, 30 s encoder", DecodeOptions(context_s=10.0), (30.0, 30.0)),
    ("context 10 s, encoder hears audio + 2 s", DecodeOptions(context_s=10.0), (AUDIO_PLUS_2S, AUDIO_PLUS_2S)),
    ("context 15 s", DecodeOptions(context_s=15.0), DEFAULT),
    ("context 25 s, 4 prompt transcripts", DecodeOptions(context_s=25.0, prompt_segments=4), DEFAULT),
]
# the encoder window on a second recording (the pipeline bench's meeting), so the choice is
# not fitted to one file
SECOND = [row for row in SETTINGS if row[1] in (DecodeOptions(), DecodeOptions(policy="utterance"))]


def run(path: Path, engine, settings) -> dict:
    reference = " ".join(u.text for u in load_reference(path))
    offline_text, _ = offline(path, engine)
    rows = []
    for name, decode, (with_prefix, alone) in settings:
        ct2.ENCODER_TAIL_S = 2.0 if with_prefix == AUDIO_PLUS_2S else DEFAULT_TAIL_S
        engine.options = replace(engine.options, min_window_s=with_prefix, min_window_alone_s=alone)
        error, seconds = in_process(path, engine, reference, decode)
        default = (with_prefix, alone) == DEFAULT and decode in (DecodeOptions(), DecodeOptions(policy="utterance"))
        rows.append({"setting": name + (" (default)" if default else ""), "policy": decode.policy,
                     "context_s": decode.context_s, "prompt_segments": decode.prompt_segments,
                     "lead_in_s": decode.lead_in_s, "encoder_window_s": [with_prefix, alone],
                     "wer": round(error, 3), "decodes": len(seconds),
                     "seconds_per_decode": round(statistics.mean(seconds), 3),
                     "seconds_per_decode_p95": round(sorted(seconds)[int(0.95 * (len(seconds) - 1))], 3)})
        print(path.name, rows[-1], flush=True)
    ct2.ENCODER_TAIL_S, engine.options = DEFAULT_TAIL_S, AsrOptions()
    return {"audio": path.name, "offline_wer": round(wer(reference, offline_text), 3), "settings": rows}


def table(result: dict) -> str:
    return "\n".join(f"| {r['setting']} | {r['wer']:.1%} | {r['wer'] / result['offline_wer'] - 1:+.0%} | "
                     f"{r['seconds_per_decode']} | {r['seconds_per_decode_p95']} |" for r in result["settings"])


def main() -> None:
    engine = create_engine("ctranslate2", resolve("whisper-base"))
    main_run = run(make_bench_recording(DATA), engine, SETTINGS)
    second = run(make_meeting(DATA), engine, SECOND)
    data = {"machine": machine(), **main_run, "second_recording": second}
    head = "| setting | WER | vs offline | s per decode (mean) | p95 |\n|---|---|---|---|---|"
    report = f"""# Decoding policy trade-off

Measured {data['machine']['date']} on {data['machine']['cpus']} CPUs. Audio: `{data['audio']}` (the streaming bench
recording). Whisper base int8, beam 5, the pipeline's stream logic in-process (same VAD
segments for every row), audio as fast as it goes. Offline WER of the same model on the whole
file: {data['offline_wer']:.1%}. Unless the row says otherwise, the encoder hears a request with
committed text before its new utterance (a prefix: the context policy) padded with silence to
20 s (at least 5 s past its end), and one without (the utterance policy, the first utterance,
a retry alone) padded to Whisper's 30 s.

{head}
{table(main_run)}

The encoder window on a second recording, `{second['audio']}` (offline WER {second['offline_wer']:.1%}):

{head}
{table(second)}

Latency of a final transcript is about 0.3 s (VAD hangover) plus one decode. The encoder's
cost grows with its input: Whisper's own 30 s window costs a quarter to a third more per
decode than 20 s. With the context policy the WER is the same within the noise of one
recording; the utterance policy, which hears only its own audio, loses points with 20 s, so
requests without a prefix keep 30 s. Hearing only the audio and 2 s of silence
(whisper.cpp's reduced `audio_ctx`) breaks Whisper on one recording or the other: it was
trained on 30 s windows. Every 5 s more context buys a few WER points for about 0.25 s more
per utterance on this CPU (the `context_s` parameter of `pipeline`).
"""
    write_report("policies", data, report)


if __name__ == "__main__":
    main()
