"""Figures: the live transcription path through Triton on this machine.

Measures, in one run: server start-up; real-time factor of the whole path (audio sent as
fast as possible); latency_ms p50/p95 with audio paced in real time; WER against the
espeak references; and the cost of Triton, two ways: the same stream logic in this
process without the server, and faster-whisper's own `transcribe` called directly on the
same VAD segments (one call per utterance, no context, no pipeline).

    .venv/bin/python bench/bench_pipeline.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, machine, percentiles, start_server, stream_in_process, stream_timed, write_report  # noqa: E402

from livetranslate.audio import read_audio  # noqa: E402
from livetranslate.launcher import PROFILE_MODELS  # noqa: E402
from livetranslate.pipeline import LocalStages, Pipeline  # noqa: E402
from livetranslate.protocol import EventKind, SessionOptions  # noqa: E402
from livetranslate.quality.evaluation import wer  # noqa: E402
from livetranslate.quality.samples import load_reference, make_meeting  # noqa: E402
from livetranslate.stages.whisper import create_engine  # noqa: E402
from livetranslate.weights.catalog import resolve  # noqa: E402


def transcript_text(received) -> str:
    return " ".join(e.text for _, e in received if e.kind == EventKind.TRANSCRIPT)


def run_direct(path: Path) -> tuple[float, str]:
    """The same stream logic in-process, faster-whisper called directly: no Triton."""
    engine = create_engine("ctranslate2", resolve("whisper-base"))
    pipeline = Pipeline(LocalStages(engine))
    pcm, rate = read_audio(path)
    started = time.monotonic()
    events = stream_in_process(pipeline, pcm, rate, SessionOptions("direct", rate, translate=False))
    return time.monotonic() - started, " ".join(e.text for e in events if e.kind == EventKind.TRANSCRIPT)


def run_bare(path: Path) -> tuple[float, str, int]:
    """faster-whisper's `WhisperModel.transcribe` on each VAD segment, nothing else:
    (seconds decoding, text, segments)."""
    from faster_whisper import WhisperModel

    from livetranslate.audio import pcm16_to_float, resample
    from livetranslate.stages.vad import Segmenter, VadOptions

    pcm, rate = read_audio(path)
    audio = resample(pcm16_to_float(pcm), rate)
    segments = Segmenter(VadOptions()).process(audio, True).closed
    model = WhisperModel(
        str(resolve("whisper-base")), device="cpu", compute_type="int8", cpu_threads=2, local_files_only=True
    )
    texts, started = [], time.monotonic()
    for segment in segments:
        parts, _ = model.transcribe(
            audio[segment.start_sample : segment.end_sample],
            language="de",
            beam_size=5,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        texts.append(" ".join(p.text.strip() for p in parts))
    return time.monotonic() - started, " ".join(texts), len(segments)


def main() -> None:
    path = make_meeting(DATA)
    reference = " ".join(u.text for u in load_reference(path))

    t0 = time.monotonic()
    server = start_server("bench-pipeline")
    startup_s = time.monotonic() - t0
    try:
        # transcription only: translation has its own bench (bench_translation.py)
        fast, fast_stats, audio_s = stream_timed(server.grpc_url, path, realtime=False, session="fast", translate=False)
        fast_wall = fast_stats.finished - fast_stats.started
        live, _, _ = stream_timed(server.grpc_url, path, realtime=True, session="live", translate=False)
    finally:
        server.stop()
    direct_wall, direct_text = run_direct(path)
    bare_wall, bare_text, bare_segments = run_bare(path)

    latencies = [e.latency_ms for _, e in live if e.kind == EventKind.TRANSCRIPT]
    data = {
        "machine": machine(),
        "audio": {"file": path.name, "seconds": round(audio_s, 1), "sentences": len(load_reference(path))},
        "server_startup_s": round(startup_s, 2),
        "triton": {
            "wall_s": round(fast_wall, 2),
            "rtf": round(fast_wall / audio_s, 3),
            "wer": round(wer(reference, transcript_text(fast)), 3),
        },
        "direct": {
            "wall_s": round(direct_wall, 2),
            "rtf": round(direct_wall / audio_s, 3),
            "wer": round(wer(reference, direct_text), 3),
        },
        "triton_over_direct": round(fast_wall / direct_wall, 3),
        "bare_faster_whisper": {
            "wall_s": round(bare_wall, 2),
            "rtf": round(bare_wall / audio_s, 3),
            "wer": round(wer(reference, bare_text), 3),
            "segments": bare_segments,
        },
        "triton_over_bare": round(fast_wall / bare_wall, 3),
        "realtime": {
            "latency_ms": percentiles(latencies),
            "wer": round(wer(reference, transcript_text(live)), 3),
            "segments": len(latencies),
        },
    }
    md = f"""# Live transcription pipeline

Measured {data["machine"]["date"]} on {data["machine"]["cpus"]} CPUs, Python {data["machine"]["python"]}.
Audio: `{path.name}` (espeak-ng German, {data["audio"]["sentences"]} sentences, 3 voices, pauses 0.6-2 s,
noise -45 dBFS), {audio_s:.0f} s. Transcription only (translation off). Whisper base, int8, beam 5,
temperature 0, `context` decoding policy, partials on (see streaming.md for the policy's figures).

| figure | value |
|---|---|
| server start-up (process start to ready, all {len(PROFILE_MODELS["cpu"])} models incl. Qwen 1.5B) | {startup_s:.1f} s |
| real-time factor, whole path through Triton (audio sent as fast as possible) | {data["triton"]["rtf"]} |
| real-time factor, same logic in-process, faster-whisper called directly | {data["direct"]["rtf"]} |
| cost of Triton (wall time through Triton / direct) | {data["triton_over_direct"]} |
| real-time factor, faster-whisper `transcribe` alone on the same {bare_segments} VAD segments | {data["bare_faster_whisper"]["rtf"]} |
| whole path through Triton / bare faster-whisper on the segments | {data["triton_over_bare"]} |
| latency_ms, audio paced in real time: p50 / p95 / max | {data["realtime"]["latency_ms"].get("p50")} / {data["realtime"]["latency_ms"].get("p95")} / {data["realtime"]["latency_ms"].get("max")} ms |
| WER, real-time run | {data["realtime"]["wer"]:.1%} |
| WER, fast run through Triton / direct / bare faster-whisper per segment | {data["triton"]["wer"]:.1%} / {data["direct"]["wer"]:.1%} / {data["bare_faster_whisper"]["wer"]:.1%} |

latency_ms runs from the arrival of the chunk holding the utterance's last voiced frame to
the event being sent: it includes the VAD hangover (300 ms of silence needed to close an
utterance) and the Whisper decode (one encoder pass over at least 20 s per utterance).
The bare faster-whisper run is the floor of the work: each utterance decoded once, alone
(no context, no partials, no server); the whole path does more (the context policy decodes
the recent audio with the committed text forced, partials) and is more accurate for it.
The robotic espeak voices make absolute WER pessimistic; compare runs, not absolutes.
"""
    write_report("pipeline", data, md)


if __name__ == "__main__":
    main()
