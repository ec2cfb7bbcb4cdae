"""Who is speaking: online clustering of utterance embeddings, per stream, in plain Python.

Each utterance's embedding (livetranslate.stages.speakers.encoder, L2-normalised) goes to the
speaker whose running centroid is nearest by cosine similarity, if at least `threshold`;
otherwise a new speaker begins (labels S1, S2, ... never reused). An utterance shorter than
`min_duration_s` has too little voice for a reliable embedding: it takes its context's label
(the previous utterance's) unless it clearly matches another known speaker, never starts a new
one, and leaves the centroids alone. At a pause, `recheck` merges two
speakers whose centroids have come close (and, with a `num_speakers` hint, the closest ones
until no more than that many remain) and says which labels changed, so that earlier lines can
be relabelled (a later `speaker_update` event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Calibrated on bench/bench_speakers.py's calibration recording (bench/results/speakers.md)
DEFAULT_THRESHOLD = 0.875
DEFAULT_MERGE_THRESHOLD = 0.9
MIN_DURATION_S = 1.0
SHORT_MARGIN = 0.05


@dataclass(frozen=True)
class Assignment:
    label: str
    similarity: float  # to the centroid it joined (a short one: its context's); 1.0 for a new speaker
    new_speaker: bool = False
    from_context: bool = False  # short: the previous utterance's label


@dataclass(frozen=True)
class Merge:
    """`gone` became `kept`: every utterance labelled `gone` (`utterances`, their indices in
    the order they were assigned) now says `kept`."""

    gone: str
    kept: str
    similarity: float
    utterances: tuple[int, ...]


@dataclass(frozen=True)
class Recheck:
    """What a re-check changed: the merges, and every earlier utterance whose label is now
    another (its index in assignment order -> its new label), merges included."""

    merges: list[Merge]
    relabelled: dict[int, str]


@dataclass
class _Speaker:
    label: str
    total: np.ndarray  # sum of the member embeddings
    count: int = 1

    @property
    def centroid(self) -> np.ndarray:
        return self.total / max(float(np.linalg.norm(self.total)), 1e-12)


@dataclass
class OnlineSpeakers:
    """One stream's speakers."""

    threshold: float = DEFAULT_THRESHOLD
    merge_threshold: float = DEFAULT_MERGE_THRESHOLD
    min_duration_s: float = MIN_DURATION_S
    num_speakers: int | None = None  # the organiser's hint: at most this many
    # a short utterance leaves its context's label only for a known speaker it matches (at least
    # `threshold`) by this much more than its context's
    short_margin: float = SHORT_MARGIN
    speakers: list[_Speaker] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # each utterance's label, in order
    refine_rounds: int = 3  # re-check: reassignments of the earlier utterances to the centroids
    _embeddings: list[np.ndarray] = field(default_factory=list)
    _long: list[bool] = field(default_factory=list)
    _next: int = 1

    def _new_speaker(self, embedding: np.ndarray) -> _Speaker:
        speaker = _Speaker(f"S{self._next}", embedding.astype(np.float64).copy())
        self._next += 1
        self.speakers.append(speaker)
        return speaker

    def _speaker(self, label: str) -> _Speaker:
        return next(s for s in self.speakers if s.label == label)

    def similarities(self, embedding: np.ndarray) -> np.ndarray:
        """Cosine similarity of the embedding to each speaker's centroid, in speaker order."""
        if not self.speakers:
            return np.zeros(0)
        e = np.asarray(embedding, np.float64)
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        return np.array([float(s.centroid @ e) for s in self.speakers])

    def assign(self, embedding: np.ndarray, duration_s: float) -> Assignment:
        """The label of the next utterance of the stream."""
        e = np.asarray(embedding, np.float64)
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        sims = self.similarities(e)
        self._embeddings.append(e)
        self._long.append(duration_s >= self.min_duration_s or not self.history)
        if duration_s < self.min_duration_s and self.history:
            label = self.history[-1]
            context = sims[self.labels.index(label)]
            best = int(sims.argmax())
            if sims[best] >= self.threshold and sims[best] - context >= self.short_margin:
                label = self.speakers[best].label
                self.history.append(label)
                return Assignment(label, float(sims[best]))
            self.history.append(label)
            return Assignment(label, float(context), from_context=True)
        full = self.num_speakers is not None and len(self.speakers) >= self.num_speakers
        if len(sims) and (sims.max() >= self.threshold or full):
            speaker = self.speakers[int(sims.argmax())]
            speaker.total += e
            speaker.count += 1
            self.history.append(speaker.label)
            return Assignment(speaker.label, float(sims.max()))
        speaker = self._new_speaker(e)
        self.history.append(speaker.label)
        return Assignment(speaker.label, 1.0, new_speaker=True)

    def _closest_pair(self) -> tuple[float, int, int] | None:
        best = None
        for i in range(len(self.speakers)):
            for j in range(i + 1, len(self.speakers)):
                sim = float(self.speakers[i].centroid @ self.speakers[j].centroid)
                if best is None or sim > best[0]:
                    best = (sim, i, j)
        return best

    def recheck(self) -> Recheck:
        """At a pause: the earlier utterances go again to their nearest centroid (now that the
        centroids have seen more), then speakers whose centroids came within `merge_threshold`
        merge (and, with a hint, the closest until at most `num_speakers` remain; the older
        label stays)."""
        before = list(self.history)
        self._refine()
        merges = self._merge()
        return Recheck(merges, {n: label for n, (old, label) in enumerate(zip(before, self.history)) if old != label})

    def _refine(self) -> None:
        """A few rounds of k-means over the long utterances, seeded by the centroids; no speaker
        appears, one left empty goes; short ones take their context again."""
        for _ in range(self.refine_rounds):
            if len(self.speakers) < 2:
                return
            centroids = np.array([s.centroid for s in self.speakers])
            labels = list(self.history)
            for n, e in enumerate(self._embeddings):
                if self._long[n]:
                    labels[n] = self.speakers[int(np.argmax(centroids @ e))].label
                elif n:
                    labels[n] = labels[n - 1] if labels[n] == self.history[n - 1] else labels[n]
            if labels == self.history:
                return
            self.history[:] = labels
            for speaker in self.speakers:
                members = [e for n, e in enumerate(self._embeddings) if self._long[n] and labels[n] == speaker.label]
                speaker.total, speaker.count = (
                    (np.sum(members, axis=0), len(members)) if members else (speaker.total, 0)
                )
            self.speakers[:] = [s for s in self.speakers if s.count]

    def _merge(self) -> list[Merge]:
        merges: list[Merge] = []
        while (pair := self._closest_pair()) is not None:
            sim, i, j = pair
            over_hint = self.num_speakers is not None and len(self.speakers) > self.num_speakers
            if sim < self.merge_threshold and not over_hint:
                break
            kept, gone = self.speakers[i], self.speakers[j]  # i < j: i is the older
            kept.total += gone.total
            kept.count += gone.count
            self.speakers.remove(gone)
            relabelled = tuple(n for n, label in enumerate(self.history) if label == gone.label)
            for n in relabelled:
                self.history[n] = kept.label
            for m in merges:  # an earlier merge into the label now gone follows it
                if m.kept == gone.label:
                    merges[merges.index(m)] = Merge(m.gone, kept.label, m.similarity, m.utterances)
            merges.append(Merge(gone.label, kept.label, sim, relabelled))
        return merges

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.speakers]


def best_mapping_accuracy(truth: list[str], found: list[str]) -> tuple[float, dict[str, str]]:
    """The share of items whose found label maps to their true one under the best one-to-one
    mapping of found labels to true ones (unmapped found labels count as wrong), and that
    mapping. Exact: dynamic programming over subsets of the true labels (few speakers)."""
    if len(truth) != len(found):
        raise ValueError("truth and found differ in length")
    if not truth:
        return 1.0, {}
    true_labels, found_labels = sorted(set(truth)), sorted(set(found))
    counts = np.zeros((len(found_labels), len(true_labels)), int)
    for true_label, found_label in zip(truth, found):
        counts[found_labels.index(found_label), true_labels.index(true_label)] += 1
    if len(true_labels) > 16:
        raise ValueError("too many true speakers for the exact mapping")
    # best[mask]: most items matched by the found labels seen so far using the true labels in mask
    best: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {0: (0, ())}
    for f in range(len(found_labels)):
        step = dict(best)
        for mask, (score, chosen) in best.items():
            for t in range(len(true_labels)):
                if not mask & (1 << t):
                    key = mask | (1 << t)
                    candidate = (score + int(counts[f, t]), chosen + ((f, t),))
                    if key not in step or candidate[0] > step[key][0]:
                        step[key] = candidate
        best = step
    score, chosen = max(best.values(), key=lambda v: v[0])
    return score / len(truth), {found_labels[f]: true_labels[t] for f, t in chosen}
