"""Near-duplicate filter for published translations (rapidfuzz)."""

from __future__ import annotations

import collections

from rapidfuzz import fuzz, utils


class SimilarityFilter:
    """Remembers the last `history` published texts; a new text is news only when its
    similarity (rapidfuzz ratio on normalised text, 0..1) to each of them is below
    `threshold`."""

    def __init__(self, history: int = 3, threshold: float = 0.85):
        self.threshold = threshold
        self._recent: collections.deque[str] = collections.deque(maxlen=max(1, history))

    def similarity(self, text: str) -> float:
        return max((fuzz.ratio(text, old, processor=utils.default_process) / 100 for old in self._recent), default=0.0)

    def is_new(self, text: str) -> bool:
        return bool(text.strip()) and self.similarity(text) < self.threshold

    def remember(self, text: str) -> None:
        self._recent.append(text)
