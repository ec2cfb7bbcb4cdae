"""Enhanced translation, the `enhance` model's logic (model_repository/enhance): a sliding
window of recent transcripts that is translated as a whole when it holds a complete thought,
is full, or the speaker paused; a window never spans a change of speaker (with speaker labels
on): a new speaker starts a new window. One Enhancer per stream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from livetranslate.stages.completeness import SENTENCE_END
from livetranslate.stages.similarity import SimilarityFilter


@dataclass(frozen=True)
class WindowOptions:
    # A window is translated when it ends a sentence and holds min_words (or, without
    # punctuation, the LLM says it is a complete thought), when it is full, or at a pause.
    # Whisper ends nearly every transcript with punctuation, so the window is one to three
    # transcripts: a sentence split over utterances is joined and short turns ("Ja, gerne.")
    # are translated with the next, while the text stays a few seconds behind the speech.
    # Figures and the variants measured: bench/results/enhance.md.
    max_words: int = 40
    max_seconds: float = 20.0
    # A silence this long between utterances ends a thought whatever the LLM thinks.
    pause_s: float = 2.0
    # Fewer words than this never close a window on their own ("Ja.", "Genau.").
    min_words: int = 12
    # A window whose text ends a sentence and holds min_words closes without asking the LLM
    # (one LLM call fewer per transcript); the LLM is asked only about text without punctuation.
    sentence_end_closes: bool = True
    # Similarity filter: against the last 3 published, 0.85 ratio = at most a few words changed.
    history: int = 3
    similarity_threshold: float = 0.85
    # Give the LLM the source text before the window (its last context_words words) to read
    # the window by. The source, not the previous translation: a small LLM lets a translation
    # leak into the next window ("Ich habe eine Frage zur Sicherheit" became "Is there
    # anything else you would like to know about the security").
    use_context: bool = True
    context_words: int = 40


@dataclass(frozen=True)
class Piece:
    segment_id: int
    text: str
    start_s: float
    end_s: float
    speaker: str = ""  # its speaker's label, with speaker labels on: a new speaker starts a new window


@dataclass(frozen=True)
class Tick:
    """The stream's clock (audio seconds) while the speaker is silent: a pause long enough
    ends the window. A tick is idempotent: the same tick twice publishes at most once."""

    now_s: float


@dataclass(frozen=True)
class Enhanced:
    first_segment_id: int
    last_segment_id: int
    text: str
    start_s: float
    end_s: float
    reason: str  # complete | sentence | full | pause | speaker | end


@dataclass
class Enhancer:
    options: WindowOptions
    translate: Callable[[str, str], str]  # (source text, the source text before it) -> translation
    is_complete: Callable[[str], bool]
    _window: list[Piece] = field(default_factory=list)
    _before: str = ""  # the source text of the windows before, for context
    _filter: SimilarityFilter = field(init=False)  # made in __post_init__, from the options
    _translating: bool = True  # false: windows closed by this step are dropped untranslated
    dropped: int = 0
    skipped: int = 0  # windows dropped untranslated because the stream was behind

    def __post_init__(self):
        self._filter = SimilarityFilter(self.options.history, self.options.similarity_threshold)

    @property
    def text(self) -> str:
        return " ".join(p.text.strip() for p in self._window)

    def step(self, step: Piece | Tick, check_complete: bool = True, translate: bool = True) -> list[Enhanced]:
        return self.tick(step.now_s) if isinstance(step, Tick) else self.add(step, check_complete, translate)

    def add(self, piece: Piece, check_complete: bool = True, translate: bool = True) -> list[Enhanced]:
        """A transcript (one without words is a tick at its end). Without `check_complete`
        (the LLM is behind) the window closes only when full, at a pause or at the end.
        Without `translate` (the stream's enhanced translations are far behind) a window that
        closes is dropped untranslated: the LLM catches up, the sentence translations stand."""
        if not piece.text.strip():
            return self.tick(piece.end_s)
        out = []
        self._translating = translate
        if self._window and piece.start_s - self._window[-1].end_s >= self.options.pause_s:
            out += self._emit("pause")
        elif self._window and piece.speaker != self._window[-1].speaker:
            out += self._emit("speaker")
        self._window.append(piece)
        words = len(self.text.split())
        if words >= self.options.max_words or piece.end_s - self._window[0].start_s >= self.options.max_seconds:
            out += self._emit("full")
        elif words < self.options.min_words:
            pass
        elif self.options.sentence_end_closes and SENTENCE_END.search(self.text):
            out += self._emit("sentence")
        elif check_complete and self.is_complete(self.text):
            out += self._emit("complete")
        return out

    def tick(self, now_s: float) -> list[Enhanced]:
        """The stream's clock while the speaker is silent: a long enough pause ends the window."""
        self._translating = True
        if self._window and now_s - self._window[-1].end_s >= self.options.pause_s:
            return self._emit("pause")
        return []

    def flush(self) -> list[Enhanced]:
        self._translating = True
        return self._emit("end") if self._window else []

    def _emit(self, reason: str) -> list[Enhanced]:
        window, self._window = self._window, []
        source = " ".join(p.text.strip() for p in window)
        context = self._before if self.options.use_context else ""
        kept = self.options.context_words
        self._before = " ".join((self._before + " " + source).split()[-kept:]) if kept > 0 else ""
        if not self._translating:
            self.skipped += 1
            return []
        translation = self.translate(source, context)
        if not self._filter.is_new(translation):
            self.dropped += 1
            return []
        self._filter.remember(translation)
        return [
            Enhanced(
                window[0].segment_id, window[-1].segment_id, translation, window[0].start_s, window[-1].end_s, reason
            )
        ]
