"""Who is speaking: online clustering of utterance embeddings, per stream, in plain numpy.

Live (`assign`): each utterance's embedding (livetranslate.stages.speakers.encoder,
L2-normalised) goes to the speaker whose centroid (duration-weighted) is nearest by cosine
similarity, if at least `threshold`; otherwise a new speaker begins (labels S1, S2, ... never
reused). An utterance shorter than `min_duration_s` has too little voice for a reliable
embedding: it takes its context's label (the previous utterance's) unless another known speaker
beats its context's by `short_margin` (and reaches `short_threshold`); it never starts a new one
and leaves the centroids alone.

At a pause (`recheck`), all the long utterances so far (the last `window` of them) are clustered
again from scratch: agglomerative, average linkage, until no two clusters are within
`merge_threshold` (with a `num_speakers` hint: on until no more than that many remain). A
cluster is a speaker only once confirmed (at least `min_utterances` utterances or
`min_speaker_s` seconds of speech); an unconfirmed one is folded into its nearest confirmed
cluster unless it holds one of the latest `pending` long utterances (a new speaker who just
began). A few k-means rounds settle the borders, the short utterances take their context again,
and the clusters are mapped onto the existing labels one-to-one so that as few utterances as
possible change label (ties: the older label): a label left without a cluster has merged into
the one most of its utterances went to; a cluster left without a label is a new speaker. The
result says which earlier utterances changed label (a later `speaker_update` event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Calibrated on bench/bench_speakers.py's calibration recordings (bench/results/speakers.md)
# and calibration_2; merge_threshold: the middle of 0.8-0.825, where both give 4 speakers and
# >= 96 %; min_utterances 3 (2 left 6 speakers for 4 on calibration_2); short_margin 0.03 (the
# calibration interjections all come from someone else than their context: 0.05 cost one)
DEFAULT_THRESHOLD = 0.75
DEFAULT_MERGE_THRESHOLD = 0.8125
MIN_DURATION_S = 1.0
SHORT_MARGIN = 0.03
SHORT_THRESHOLD = 0.0
MIN_UTTERANCES = 3
MIN_SPEAKER_S = 15.0
PENDING, WEIGHT_CAP_S, WINDOW = 2, 4.0, 400


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
    total: np.ndarray  # sum of the member embeddings, each weighted by its duration (capped)
    count: int = 1

    @property
    def centroid(self) -> np.ndarray:
        return self.total / max(float(np.linalg.norm(self.total)), 1e-12)


def _number(label: str) -> int:
    return int(label[1:])


def average_linkage(
    embeddings: np.ndarray, weights: np.ndarray, stop: float, at_most: int | None = None
) -> list[list[int]]:
    """Agglomerative clustering of unit rows by cosine similarity, average linkage (each pair of
    members weighted by the product of their weights): the closest two clusters join while
    their similarity is at least `stop`, or while there are more than `at_most`. Clusters as
    lists of row indices, in order of their first member."""
    n = len(embeddings)
    if n == 0:
        return []
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    w = np.asarray(weights, np.float64).copy()
    members: list[list[int] | None] = [[i] for i in range(n)]
    alive = n
    while alive > 1:
        flat = int(np.argmax(sims))
        a, b = divmod(flat, n)
        best = float(sims[a, b])
        if best < stop and (at_most is None or alive <= at_most):
            break
        a, b = min(a, b), max(a, b)
        row = (w[a] * sims[a] + w[b] * sims[b]) / (w[a] + w[b])
        sims[a], sims[:, a] = row, row
        sims[a, a] = -np.inf
        sims[b], sims[:, b] = -np.inf, -np.inf
        w[a] += w[b]
        members[a], members[b] = (members[a] or []) + (members[b] or []), None
        alive -= 1
    return sorted((sorted(m) for m in members if m is not None), key=lambda m: m[0])


def _best_one_to_one(overlap: np.ndarray, prefer: np.ndarray) -> dict[int, int]:
    """Rows (clusters) to columns (labels), one-to-one, with the most overlap in all; among
    equals, the columns with the higher `prefer`. Exact (dynamic programming over subsets of
    the columns) for up to 8 columns, else greedy, the largest overlap first."""
    rows, cols = overlap.shape
    score = overlap.astype(np.float64) + 1e-6 * prefer[None, :]
    if cols <= 8:
        best: dict[int, tuple[float, tuple[tuple[int, int], ...]]] = {0: (0.0, ())}
        for r in range(rows):
            step = dict(best)
            for mask, (total, chosen) in best.items():
                for c in range(cols):
                    if not mask & (1 << c) and overlap[r, c] > 0:
                        key, candidate = mask | (1 << c), (total + score[r, c], chosen + ((r, c),))
                        if key not in step or candidate[0] > step[key][0]:
                            step[key] = candidate
            best = step
        return dict(max(best.values(), key=lambda v: v[0])[1])
    chosen_pairs: dict[int, int] = {}
    used: set[int] = set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        r, c = divmod(int(flat), cols)
        if r in chosen_pairs or c in used or overlap[r, c] <= 0:
            continue
        chosen_pairs[r] = c
        used.add(c)
    return chosen_pairs


@dataclass
class OnlineSpeakers:
    """One session's speakers (livetranslate.pipeline.voices shares them among its streams)."""

    threshold: float = DEFAULT_THRESHOLD
    merge_threshold: float = DEFAULT_MERGE_THRESHOLD
    min_duration_s: float = MIN_DURATION_S
    num_speakers: int | None = None  # the organiser's hint: at most this many
    # a short utterance leaves its context's label only for a known speaker it matches (at least
    # `short_threshold`) by this much more than its context's
    short_margin: float = SHORT_MARGIN
    short_threshold: float = SHORT_THRESHOLD
    # a speaker is confirmed (at a re-check) by this many long utterances or seconds of speech
    min_utterances: int = MIN_UTTERANCES
    min_speaker_s: float = MIN_SPEAKER_S
    pending: int = PENDING  # an unconfirmed cluster holding one of the latest long ones stays
    weight_cap_s: float = WEIGHT_CAP_S  # an utterance weighs its duration, up to this
    window: int = WINDOW  # the re-check clusters the latest long utterances, at most this many
    speakers: list[_Speaker] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # each utterance's label, in order
    refine_rounds: int = 3  # re-check: k-means rounds over the long utterances after the clustering
    _embeddings: list[np.ndarray] = field(default_factory=list)
    _durations: list[float] = field(default_factory=list)
    _long: list[bool] = field(default_factory=list)
    _next: int = 1

    def _weight(self, duration_s: float) -> float:
        return min(max(duration_s, 0.1), self.weight_cap_s)

    def _new_speaker(self, embedding: np.ndarray, weight: float) -> _Speaker:
        speaker = _Speaker(f"S{self._next}", weight * embedding.astype(np.float64))
        self._next += 1
        self.speakers.append(speaker)
        return speaker

    def similarities(self, embedding: np.ndarray) -> np.ndarray:
        """Cosine similarity of the embedding to each speaker's centroid, in speaker order."""
        if not self.speakers:
            return np.zeros(0)
        e = np.asarray(embedding, np.float64)
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        return np.array([float(s.centroid @ e) for s in self.speakers])

    def _short_label(self, sims: np.ndarray, context: str) -> tuple[str, float, bool]:
        """A short utterance's label: its context's, unless another known speaker clearly fits
        better. (label, similarity, from_context)"""
        labels = self.labels
        at = sims[labels.index(context)] if context in labels else -1.0
        best = int(sims.argmax()) if len(sims) else -1
        if best >= 0 and sims[best] >= self.short_threshold and sims[best] - at >= self.short_margin:
            return labels[best], float(sims[best]), False
        return context, float(at), True

    def assign(self, embedding: np.ndarray, duration_s: float) -> Assignment:
        """The label of the next utterance of the stream."""
        e = np.asarray(embedding, np.float64)
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        sims = self.similarities(e)
        self._embeddings.append(e)
        self._durations.append(float(duration_s))
        long = duration_s >= self.min_duration_s or not self.history
        self._long.append(long)
        if not long:
            label, similarity, from_context = self._short_label(sims, self.history[-1])
            self.history.append(label)
            return Assignment(label, similarity, from_context=from_context)
        weight = self._weight(duration_s)
        full = self.num_speakers is not None and len(self.speakers) >= self.num_speakers
        if len(sims) and (sims.max() >= self.threshold or full):
            speaker = self.speakers[int(sims.argmax())]
            speaker.total += weight * e
            speaker.count += 1
            self.history.append(speaker.label)
            return Assignment(speaker.label, float(sims.max()))
        speaker = self._new_speaker(e, weight)
        self.history.append(speaker.label)
        return Assignment(speaker.label, 1.0, new_speaker=True)

    def recheck(self) -> Recheck:
        """At a pause: the long utterances are clustered again, and the clusters mapped onto the
        labels with the least relabelling (see the module's doc); says what changed."""
        before = list(self.history)
        if len(self.speakers) == 0:
            return Recheck([], {})
        long_all = [n for n, is_long in enumerate(self._long) if is_long]
        idx = long_all[-self.window :]
        frozen = set(long_all[: -self.window]) if len(long_all) > self.window else set()
        E = np.array([self._embeddings[n] for n in idx])
        w = np.array([self._weight(self._durations[n]) for n in idx])
        clusters = average_linkage(E, w, self.merge_threshold, self.num_speakers)
        clusters = self._confirm(E, np.array([self._durations[n] for n in idx]), clusters)
        clusters = self._kmeans(E, w, clusters)
        cluster_label = self._labels_for(clusters, idx, before)
        old_labels = sorted({before[n] for n in idx}, key=_number)
        for c, members in enumerate(clusters):
            for i in members:
                self.history[idx[i]] = cluster_label[c]
        # a label that lost its cluster merged into the one most of its utterances went to;
        # its utterances outside the window follow it
        merges: list[Merge] = []
        survivors = set(cluster_label)
        for label in old_labels:
            if label in survivors:
                continue
            went = [self.history[n] for n in idx if before[n] == label]
            kept = max(sorted(set(went), key=_number), key=went.count)
            for n in frozen:
                if self.history[n] == label:
                    self.history[n] = kept
            merges.append(Merge(label, kept, 0.0, ()))
        self._relabel_short()  # (it rebuilds the centroids; short utterances never count in them)
        merges = [
            Merge(
                m.gone,
                m.kept,
                self._similarity_of(m.gone, m.kept, before),
                tuple(n for n, old in enumerate(before) if old == m.gone),
            )
            for m in merges
        ]
        return Recheck(merges, {n: label for n, (old, label) in enumerate(zip(before, self.history)) if old != label})

    def _labels_for(self, clusters: list[list[int]], idx: list[int], before: list[str]) -> list[str]:
        """Each cluster's label: the clusters mapped onto the labels before so that the most
        utterances keep theirs (older labels first); a cluster left over is a new speaker."""
        old_labels = sorted({before[n] for n in idx}, key=_number)
        overlap = np.zeros((len(clusters), len(old_labels)), int)
        for c, members in enumerate(clusters):
            for i in members:
                overlap[c, old_labels.index(before[idx[i]])] += 1
        prefer = -np.array([_number(label) for label in old_labels], np.float64)
        prefer = prefer - prefer.min()  # older labels: higher
        mapping = _best_one_to_one(overlap, prefer)
        # a merge: an older label left without a cluster, most of whose utterances went to one
        # that took a younger label, survives instead of it
        for col in range(len(old_labels)):
            if col in mapping.values():
                continue
            c = int(np.argmax(overlap[:, col]))
            if c in mapping and overlap[c, col] > 0 and mapping[c] > col:
                mapping[c] = col
        cluster_label: list[str] = []
        for c in range(len(clusters)):
            if c in mapping:
                cluster_label.append(old_labels[mapping[c]])
            else:
                cluster_label.append(f"S{self._next}")
                self._next += 1
        return cluster_label

    def _similarity_of(self, gone: str, kept: str, before: list[str]) -> float:
        """Cosine similarity of a gone label's old centroid to the one it merged into."""
        total = np.zeros_like(self._embeddings[0])
        for n, label in enumerate(before):
            if label == gone and self._long[n]:
                total += self._weight(self._durations[n]) * self._embeddings[n]
        norm = float(np.linalg.norm(total))
        if norm == 0:
            return 0.0
        speaker = next((s for s in self.speakers if s.label == kept), None)
        return float(speaker.centroid @ (total / norm)) if speaker is not None else 0.0

    def _confirm(self, E: np.ndarray, seconds: np.ndarray, clusters: list[list[int]]) -> list[list[int]]:
        """Folds each unconfirmed cluster (too few utterances and too little speech, none of the
        latest `pending`) into the confirmed one nearest to it (average similarity)."""

        def confirmed(members: list[int]) -> bool:
            return len(members) >= self.min_utterances or float(seconds[members].sum()) >= self.min_speaker_s

        recent = set(range(max(0, len(E) - self.pending), len(E)))
        keep = [c for c in clusters if confirmed(c)]
        if not keep:
            return clusters
        fold = [c for c in clusters if not confirmed(c) and recent.isdisjoint(c)]
        stay = [c for c in clusters if not confirmed(c) and not recent.isdisjoint(c)]
        for members in fold:
            sims = [float((E[members] @ E[k].T).mean()) for k in keep]
            keep[int(np.argmax(sims))].extend(members)
        return sorted((sorted(c) for c in keep + stay), key=lambda m: m[0])

    def _kmeans(self, E: np.ndarray, w: np.ndarray, clusters: list[list[int]]) -> list[list[int]]:
        """A few rounds: each utterance to its nearest (weighted) centroid; a cluster left empty
        goes. None appears."""
        for _ in range(self.refine_rounds):
            if len(clusters) < 2:
                break
            centroids = np.array([(w[c, None] * E[c]).sum(0) for c in clusters])
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            nearest = np.argmax(E @ centroids.T, axis=1)
            moved = [sorted(int(i) for i in np.flatnonzero(nearest == c)) for c in range(len(clusters))]
            moved = [c for c in moved if c]
            if moved == clusters:
                break
            clusters = sorted(moved, key=lambda m: m[0])
        return clusters

    def _relabel_short(self) -> None:
        """The short utterances take their context (the previous utterance's label) again,
        against the centroids of the long ones."""
        self._rebuild()
        for n, is_long in enumerate(self._long):
            if is_long or n == 0:
                continue
            sims = self.similarities(self._embeddings[n])
            self.history[n] = self._short_label(sims, self.history[n - 1])[0]

    def _rebuild(self) -> None:
        """The speakers (in label order) and their centroids, from the long utterances' labels."""
        totals: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        for n, label in enumerate(self.history):
            if self._long[n]:
                weighted = self._weight(self._durations[n]) * self._embeddings[n]
                totals[label] = totals[label] + weighted if label in totals else weighted.copy()
                counts[label] = counts.get(label, 0) + 1
        self.speakers[:] = [_Speaker(label, totals[label], counts[label]) for label in sorted(totals, key=_number)]

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
