"""Speaker labels: the numpy GE2E encoder (livetranslate.stages.speakers) and the online
clustering, on recordings whose voices are known.

- calibration, calibration_2: natural meetings made here (the espeak bench's 44 German
  sentences, four MBROLA/Pico voices in seeded turns (seeds 5 and 6) with short interjections,
  reverb, noise 20 dB down), and calibration_monologue (the same sentences, one MBROLA voice,
  mb-de7, not the held-out monologue's): the clustering thresholds are chosen on these only;
- report: the natural meeting the other benches use (.cache/bench/de_natural_meeting.wav, 43
  lines, 4 voices), run with the calibrated thresholds and no hint;
- monologues: one voice for about 3 minutes (an MBROLA voice with the natural meeting's lines and
  room; espeak-ng's default voice with the bench sentences): spurious speaker switches.

Each reference utterance, cut by its reference times, is embedded and assigned in order, with a
re-check after each one (the pipeline re-checks at pauses). Writes bench/results/speakers.md and .json.

    .venv/bin/python bench/bench_speakers.py
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, write_report  # noqa: E402

from livetranslate.audio import pcm16_to_float, read_audio, resample  # noqa: E402
from livetranslate.quality import samples, samples_natural  # noqa: E402
from livetranslate.quality.samples_natural import Line  # noqa: E402
from livetranslate.stages.speakers.clustering import OnlineSpeakers, best_mapping_accuracy  # noqa: E402
from livetranslate.stages.speakers.encoder import SpeakerEncoder  # noqa: E402
from livetranslate.weights.catalog import DEFAULT_SPEAKER, resolve  # noqa: E402

RATE_HZ = 16_000
# the previous clustering's figures on these recordings (the same bench, before the re-check
# re-clustered)
BEFORE = """| recording | utterances | right speaker | speakers found / true | switches found / true |
|---|---|---|---|---|
| calibration | 52 | 76.9 % (73.1 % live) | 10 / 4 | 31 / 27 |
| report | 43 | 81.4 % (81.4 % live) | 4 / 4 | 22 / 24 |
| report_with_hint | 43 | 81.4 % (81.4 % live) | 4 / 4 | 22 / 24 |
| monologue | 43 | 95.3 % (93.0 % live) | 3 / 1 | 4 / 0 |
| monologue_espeak | 44 | 100.0 % (100.0 % live) | 1 / 1 | 0 / 0 |"""
INTERJECTIONS = ["Ja.", "Genau.", "Okay.", "Mhm, verstehe.", "Richtig.", "Gut."]
THRESHOLDS = [round(0.60 + 0.025 * i, 3) for i in range(13)]  # 0.60 .. 0.90
MERGE_THRESHOLDS = [0.75, 0.775, 0.8, 0.8125, 0.825, 0.85, 0.9, 1.01]  # 1.01: never merge


def calibration_lines(seed: int = 5) -> list[Line]:
    """The espeak bench's sentences as a 4-voice meeting: turns of 1-3 sentences, the next
    speaker one of the other three, now and then a short interjection from someone else."""
    rng = np.random.default_rng(seed)
    names = sorted(samples_natural.SPEAKERS)
    sentences = samples.MEETING_DE + samples.SENTENCES_DE
    lines, who, i = [], names[0], 0
    while i < len(sentences):
        for _ in range(int(rng.integers(1, 4))):
            if i < len(sentences):
                lines.append(Line(who, sentences[i], ""))
                i += 1
        if rng.random() < 0.3:
            lines.append(Line(str(rng.choice([n for n in names if n != who])), str(rng.choice(INTERJECTIONS)), ""))
        who = str(rng.choice([n for n in names if n != who]))
    return lines


def monologue_lines(speaker: str = "Jonas") -> list[Line]:
    """The natural meeting's lines, all said by one voice (about 3 minutes)."""
    return [Line(speaker, line.de, line.en, line.spoken, line.joined) for line in samples_natural.MEETING]


def calibration_monologue_lines(speaker: str = "Katrin") -> list[Line]:
    """The bench sentences, all said by one voice (mb-de7; the held-out monologue: mb-de6 with
    the natural meeting's lines)."""
    return [Line(speaker, sentence, "") for sentence in samples.MEETING_DE + samples.SENTENCES_DE]


def _natural(path: Path, lines: list[Line], seed: int) -> Path:
    ref = samples_natural.reference_path(path)
    fresh = path.exists() and ref.exists() and samples_natural._says(path, lines)
    if not fresh:
        samples_natural.make_recording(lines, path, seed=seed)
    return path


def _espeak_monologue(folder: Path) -> Path:
    path = folder / "de_speakers_monologue_espeak.wav"
    sentences = samples.MEETING_DE + samples.SENTENCES_DE
    if not (path.exists() and samples.reference_path(path).exists()):
        samples.make_speech(sentences, path, voices=("de",), pause_s=(0.4, 1.5), noise_dbfs=-45.0, seed=23)
    return path


@dataclass
class Clips:
    name: str
    about: str
    truth: list[str]
    durations: list[float]
    embeddings: np.ndarray
    ms_per_utterance: list[float]


def embed_recording(encoder: SpeakerEncoder, name: str, about: str, path: Path, natural: bool) -> Clips:
    pcm, rate = read_audio(path)
    audio = resample(pcm16_to_float(pcm), rate, RATE_HZ)
    if natural:
        ref = samples_natural.load_reference(path)
        spans, truth = [(u.start_s, u.end_s) for u in ref], [u.voice for u in ref]
    else:
        eref = samples.load_reference(path)
        spans, truth = [(u.start_s, u.end_s) for u in eref], ["de"] * len(eref)
    clips = [audio[int(a * RATE_HZ) : int(b * RATE_HZ)] for a, b in spans]
    embeddings, costs = [], []
    for clip in clips:  # one at a time, as a live stream would
        start = time.perf_counter()
        embeddings.append(encoder.embed_utterance(clip))
        costs.append(1000 * (time.perf_counter() - start))
    return Clips(name, about, truth, [b - a for a, b in spans], np.array(embeddings), costs)


def cluster(clips: Clips, threshold: float, merge: float, hint: int | None = None) -> dict:
    speakers = OnlineSpeakers(threshold=threshold, merge_threshold=merge, num_speakers=hint)
    live, merges, relabelled, recheck_ms = [], [], 0, []
    for embedding, duration in zip(clips.embeddings, clips.durations):
        live.append(speakers.assign(embedding, duration).label)
        start = time.perf_counter()
        result = speakers.recheck()
        recheck_ms.append(1000 * (time.perf_counter() - start))
        merges += result.merges
        relabelled += len(result.relabelled)
    final = list(speakers.history)
    accuracy_live, _ = best_mapping_accuracy(clips.truth, live)
    accuracy, mapping = best_mapping_accuracy(clips.truth, final)
    return {
        "threshold": threshold,
        "merge_threshold": merge,
        "hint": hint,
        "accuracy": round(accuracy, 4),
        "accuracy_live": round(accuracy_live, 4),
        "speakers_found": len(set(final)),
        "speakers_true": len(set(clips.truth)),
        "labels_live_found": len(set(live)),
        "merges": [(m.gone, m.kept, round(m.similarity, 3)) for m in merges],
        "switches": sum(a != b for a, b in zip(final, final[1:])),
        "switches_true": sum(a != b for a, b in zip(clips.truth, clips.truth[1:])),
        "switches_live": sum(a != b for a, b in zip(live, live[1:])),
        "relabelled": relabelled,
        "recheck_ms_max": round(max(recheck_ms), 2),
        "mapping": mapping,
        "final": final,
    }


def calibrate(meetings: list[Clips], monologue: Clips) -> tuple[dict, list[dict]]:
    """The thresholds with the best mean accuracy over the calibration meetings, among those that
    find the exact speaker count on every one and keep the calibration monologue to at most one
    switch (if none does: the best mean accuracy); ties: the middle of the tied thresholds."""
    runs = []
    for t in THRESHOLDS:
        for m in MERGE_THRESHOLDS:
            each = [cluster(clips, t, m) for clips in meetings]
            mono = cluster(monologue, t, m)
            runs.append(
                {
                    "threshold": t,
                    "merge_threshold": m,
                    "accuracy": round(statistics.mean(r["accuracy"] for r in each), 4),
                    "speakers_found": [r["speakers_found"] for r in each],
                    "monologue_switches": mono["switches"],
                    "exact": all(r["speakers_found"] == r["speakers_true"] for r in each) and mono["switches"] <= 1,
                }
            )
    key = lambda r: (r["exact"], r["accuracy"])  # noqa: E731
    top = max(key(r) for r in runs)
    tied = [r for r in runs if key(r) == top]
    return tied[len(tied) // 2], runs


def _recheck_cost(clips: Clips, n: int = 300, seed: int = 0) -> dict:
    """One re-check after `n` utterances (the recording's, again and again with a little noise),
    with the default thresholds: the median of 5, in ms."""
    rng = np.random.default_rng(seed)
    reps = -(-n // len(clips.truth))
    embeddings = np.concatenate([clips.embeddings + rng.normal(0, 0.01, clips.embeddings.shape) for _ in range(reps)])
    durations = (clips.durations * reps)[:n]
    speakers = OnlineSpeakers()
    for embedding, duration in zip(embeddings[:n], durations):
        speakers.assign(embedding, duration)
    costs = []
    for _ in range(5):
        start = time.perf_counter()
        speakers.recheck()
        costs.append(1000 * (time.perf_counter() - start))
    return {"utterances": n, "ms_median": round(statistics.median(costs), 1), "speakers": len(speakers.labels)}


def _similarity_table(clips: Clips) -> str:
    names = sorted(set(clips.truth))
    sims = clips.embeddings @ clips.embeddings.T
    rows = ["| voice | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for a in names:
        cells = []
        for b in names:
            values = [
                sims[i, j]
                for i in range(len(clips.truth))
                for j in range(len(clips.truth))
                if clips.truth[i] == a and clips.truth[j] == b and i != j
            ]
            cells.append(f"{np.mean(values):.3f}" if values else "-")
        rows.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    folder = DATA
    started = time.perf_counter()
    encoder = SpeakerEncoder.load(resolve(DEFAULT_SPEAKER))
    load_s = time.perf_counter() - started
    calibration_path = _natural(folder / "de_speakers_calibration.wav", calibration_lines(), seed=41)
    calibration_2_path = _natural(folder / "de_speakers_calibration_2.wav", calibration_lines(seed=6), seed=43)
    calibration_mono_path = _natural(
        folder / "de_speakers_calibration_monologue.wav", calibration_monologue_lines(), seed=53
    )
    report_path = samples_natural.make_natural(folder)["natural"]
    mono_path = _natural(folder / "de_speakers_monologue.wav", monologue_lines(), seed=47)
    espeak_mono = _espeak_monologue(folder)
    four = "4 voices (3 MBROLA, 1 Pico), room reverb, noise 20 dB down"
    calibration = embed_recording(
        encoder,
        "calibration",
        f"{calibration_path.name}: 44 bench sentences + interjections, {four}",
        calibration_path,
        True,
    )
    calibration_2 = embed_recording(
        encoder,
        "calibration_2",
        f"{calibration_2_path.name}: the same sentences in other turns (seed 6), {four}",
        calibration_2_path,
        True,
    )
    calibration_mono = embed_recording(
        encoder,
        "calibration_monologue",
        f"{calibration_mono_path.name}: the 44 bench sentences, one MBROLA voice (mb-de7)",
        calibration_mono_path,
        True,
    )
    report = embed_recording(encoder, "report", f"{report_path.name}: the natural meeting, {four}", report_path, True)
    monologue = embed_recording(
        encoder,
        "monologue",
        f"{mono_path.name}: the natural meeting's lines, one MBROLA voice (mb-de6)",
        mono_path,
        True,
    )
    espeak = embed_recording(
        encoder, "monologue_espeak", f"{espeak_mono.name}: 44 sentences, espeak-ng `de` alone", espeak_mono, False
    )
    chosen, sweep = calibrate([calibration, calibration_2], calibration_mono)
    t, m = chosen["threshold"], chosen["merge_threshold"]
    results = {
        "calibration": cluster(calibration, t, m),
        "calibration_2": cluster(calibration_2, t, m),
        "calibration_monologue": cluster(calibration_mono, t, m),
        "report": cluster(report, t, m),
        "report_with_hint": cluster(report, t, m, hint=4),
        "monologue": cluster(monologue, t, m),
        "monologue_espeak": cluster(espeak, t, m),
    }
    everything = [calibration, calibration_2, calibration_mono, report, monologue, espeak]
    costs = [c for clips in everything for c in clips.ms_per_utterance]
    seconds = sum(d for clips in everything for d in clips.durations)
    cost = {
        "utterances": len(costs),
        "ms_median": round(statistics.median(costs), 1),
        "ms_p90": round(sorted(costs)[int(0.9 * len(costs))], 1),
        "ms_per_audio_s": round(sum(costs) / seconds, 1),
        "seconds_of_audio": round(seconds, 1),
        "load_s": round(load_s, 2),
    }
    data = {
        "recordings": {c.name: {"about": c.about, "utterances": len(c.truth)} for c in everything},
        "chosen": {"threshold": t, "merge_threshold": m},
        "results": results,
        "cost": cost,
        "recheck": _recheck_cost(report),
        "sweep": sweep,
    }
    write_report("speakers", data, _markdown(data, calibration, report))


def _markdown(data: dict, calibration: Clips, report: Clips) -> str:
    res, cost, chosen = data["results"], data["cost"], data["chosen"]
    rows = []
    for name, r in res.items():
        rows.append(
            f"| {name} | {data['recordings'][name.removesuffix('_with_hint')]['utterances']} | "
            f"{r['hint'] or '-'} | {100 * r['accuracy']:.1f} % ({100 * r['accuracy_live']:.1f} % live) | "
            f"{r['speakers_found']} / {r['speakers_true']} | {r['switches']} / {r['switches_true']} | "
            f"{len(r['merges'])} | {r['relabelled']} |"
        )
    recs = "\n".join(f"- **{k}**: {v['about']} ({v['utterances']} utterances)" for k, v in data["recordings"].items())
    ok = [s for s in data["sweep"] if s["exact"] and s["accuracy"] >= 0.9]
    merges_ok = sorted({s["merge_threshold"] for s in ok})
    live_ok = sorted({s["threshold"] for s in ok})
    recheck = data["recheck"]
    return f"""# Speaker labels: GE2E encoder (numpy) + online clustering

Measured by `bench/bench_speakers.py` on this 2-core machine (shared). Each reference utterance,
cut by its reference times, is embedded alone (as a live stream would) and assigned in order;
after each one, a re-check re-clusters the long utterances so far and may relabel earlier ones.
Accuracy: the share of utterances with the right speaker after the best one-to-one mapping of
labels to voices ("live": the label as first assigned, before later re-checks relabel it).
Relabelled: how many times a re-check changed an earlier line's label (each one a
`speaker_update` readers see).

{recs}

**What was tuned on what.** The clustering's defaults (livetranslate.stages.speakers.clustering:
the re-check's confirmation count `min_utterances`, `pending`, `short_margin`) and the two
thresholds below were chosen on **calibration**, **calibration_2** and **calibration_monologue**
only (plus the synthetic unit tests). **report**, **monologue** and **monologue_espeak** are held
out: run once with the chosen thresholds, never used to choose.

Chosen here: threshold {chosen["threshold"]} (live: join the nearest speaker, else a new one),
merge threshold {chosen["merge_threshold"]} (re-check: average-linkage stop){" (no merging)" if chosen["merge_threshold"] > 1 else ""}.
Thresholds giving exactly 4 speakers on both calibration meetings, >= 90 % on average and at most
one switch on the calibration monologue: merge threshold {merges_ok[0] if merges_ok else "none"} to
{merges_ok[-1] if merges_ok else "none"}, any live threshold from {live_ok[0] if live_ok else "none"} to {live_ok[-1] if live_ok else "none"}.

| recording | utterances | hint | right speaker | speakers found / true | switches found / true | merges | relabelled |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Before this change (the previous clustering: running centroids, merge of close centroids at
re-check; threshold 0.875, merge threshold 0.9, chosen on calibration alone):

{BEFORE}

Re-check cost: {recheck["ms_median"]} ms for one re-check after {recheck["utterances"]} utterances
(the report recording's embeddings repeated with a little noise; {recheck["speakers"]} speakers);
the longest single re-check in the runs above: {max(r["recheck_ms_max"] for r in res.values())} ms.

Encoder cost, one utterance at a time ({cost["utterances"]} utterances, {cost["seconds_of_audio"]} s of
speech): median {cost["ms_median"]} ms per utterance, p90 {cost["ms_p90"]} ms,
{cost["ms_per_audio_s"]} ms per second of audio; loading the weights {cost["load_s"]} s.

Mean cosine similarity between utterances, by voice (report recording):

{_similarity_table(report)}

Calibration recording:

{_similarity_table(calibration)}
"""


if __name__ == "__main__":
    main()
