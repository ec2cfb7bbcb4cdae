"""What readers see of the translations, shared by every view (terminal, `watch`, the
dashboard and the captions page).

Each utterance gets a sentence translation as soon as it is transcribed. The `enhanced`
translation comes later and covers a window of sentences translated together, which reads
better when the sentences belong together. Readers see it, under the name below, only when
it adds something: it covers more than one sentence, or it says something else than the
sentence translation it would replace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from livetranslate.protocol import Event, EventKind

COMBINED_NAME = "in context"  # what users read for an `enhanced` translation
# what users read beside a translation the small model made because the server was behind
DRAFT_NAME = "draft"
DRAFT_EXPLAINED = (
    "a quick translation by the small model while the server was busy; "
    "the translation in context replaces it when it comes"
)

# the quiet mark beside a line that changed after it was first shown, and what it means
IMPROVED_NAME = "improved"
IMPROVED_EXPLAINED = "translated again with the sentences around it, which reads better than sentence by sentence"
CORRECTED_NAME = "corrected"
CORRECTED_EXPLAINED = "corrected by the organiser after it was said; the translation follows the correction"

_NOT_WORDS = re.compile(r"[\W_]+", re.UNICODE)


def normalized(text: str) -> str:
    """Text as a reader compares it: case, punctuation and spacing do not count."""
    return " ".join(_NOT_WORDS.sub(" ", text.casefold()).split())


def covered_ids(enhanced: Event) -> range:
    first = enhanced.first_segment_id if enhanced.first_segment_id >= 0 else enhanced.segment_id
    return range(first, enhanced.segment_id + 1)


def adds_something(enhanced: Event, translations: Mapping[int, Event]) -> bool:
    """Whether an `enhanced` event is worth showing beside the sentence translations
    (segment id -> `translation` event, in the same language) that it covers."""
    if enhanced.kind != EventKind.ENHANCED or enhanced.error or not enhanced.text.strip():
        return False
    ids = covered_ids(enhanced)
    if len(ids) > 1:
        return True
    sentence = translations.get(ids[0])
    if sentence is None or sentence.error:
        return True  # nothing to compare it with: it is the only translation there is
    return normalized(enhanced.text) != normalized(sentence.text)
