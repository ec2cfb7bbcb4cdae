"""A scripted stage set that drives the pipeline's streams without Whisper or an LLM, on a
simulated clock. The stateful stages behave as Triton's sequence batcher makes them behave:
a request without START for a sequence the model does not hold fails with Triton's message,
and a sequence idle past the model's timeout is dropped without a word.

Audio speaks in numbers: a chunk of the int16 value k (k > 0) is the word WORDS[k], zeros
are silence. `vad` closes an utterance at the end of the first silent chunk after speech;
`whisper` hears one word per run of equal non-zero samples."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from livetranslate.pipeline.stages import PlainUrgentTranslation
from livetranslate.protocol import SAMPLE_RATE_HZ, Event, EventKind
from livetranslate.stages.enhance import Enhancer, WindowOptions
from livetranslate.stages.vad import Boundaries, Ongoing, Utterance
from livetranslate.stages.whisper import Transcription
from livetranslate.store import Hub, SessionStore

WORDS = [""] + "hallo welt guten morgen liebe leute heute reden wir über das wetter und den regen".split()


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Sequences:
    """One sequence-stateful model's sequences, as Triton keeps them."""

    def __init__(self, model: str, idle_s: float, clock: Clock):
        self.model, self.idle_s, self.clock = model, idle_s, clock
        self.held: dict[int, list] = {}  # sequence id -> [state, last request time]
        self.flags: list[tuple[int, bool, bool]] = []  # every request: (id, start, end)
        self._lock = threading.Lock()

    def request(self, sequence_id: int, start: bool, end: bool, new):
        """The sequence's state (`new()` on START), as Triton would route the request."""
        with self._lock:
            now = self.clock()
            self.flags.append((sequence_id, start, end))
            for key in [k for k, (_, seen) in self.held.items() if now - seen > self.idle_s]:
                del self.held[key]  # idle timeout: dropped silently
            if start:
                self.held[sequence_id] = [new(), now]
            entry = self.held.get(sequence_id)
            if entry is None:
                raise RuntimeError(
                    f"inference request for sequence {sequence_id} to model '{self.model}' must "
                    f"specify the START flag on the first request of the sequence"
                )
            entry[1] = now
            if end:
                del self.held[sequence_id]
            return entry[0]

    def unended(self) -> set[int]:
        """Sequences started and never ended explicitly (whether Triton still holds them or not)."""
        started, ended = set(), set()
        for sequence_id, start, end in self.flags:
            started |= {sequence_id} if start else set()
            ended |= {sequence_id} if end else set()
        return started - ended


class Segmenter:
    def __init__(self):
        self.clock, self.open, self.voiced = 0, None, 0

    def process(self, audio: np.ndarray, end: bool) -> Boundaries:
        closed, begin = [], self.clock
        self.clock += len(audio)
        speech = bool(np.any(audio != 0))
        if speech:
            self.open = begin if self.open is None else self.open
            self.voiced = self.clock
        elif self.open is not None and len(audio):
            closed.append(Utterance(self.open, self.clock, self.voiced))
            self.open = None
        if end and self.open is not None:
            closed.append(Utterance(self.open, self.clock, self.voiced))
            self.open = None
        return Boundaries(tuple(closed), Ongoing(self.open, self.voiced) if self.open is not None else None)


def words_in(audio: np.ndarray) -> list[str]:
    values = np.round(np.asarray(audio) * 32768).astype(np.int64)
    runs = values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values
    return [WORDS[v] for v in runs.tolist() if v > 0]


class ScriptedStages(PlainUrgentTranslation):
    """The pipeline's stages (livetranslate.pipeline.stages.Stages), scripted. `translate`
    waits while `llm_gate` is clear; whisper fails on the words in `whisper_fails`."""

    def __init__(self, clock: Clock, vad_idle_s: float = 120.0, enhance_idle_s: float = 600.0):
        self.clock = clock
        self.llm_gate = threading.Event()
        self.llm_gate.set()
        self.whisper_gate = threading.Event()  # whisper waits while it is clear
        self.whisper_gate.set()
        self.whisper_fails: set[str] = set()
        self.end_delay_s = 0.0  # an END request takes this long (wall time) before it arrives
        self.window = WindowOptions(min_words=100)  # published when full, at a pause, or at the end
        self.vad_sequences = Sequences("vad", vad_idle_s, clock)
        self.enhance_sequences = Sequences("enhance", enhance_idle_s, clock)
        self.calls = itertools.count()
        self.translations: list[tuple[str, str]] = []  # (text, target) of every translate call, as it began
        self.summaries: list[tuple[str, str]] = []  # (text, target) of every summarize call
        self.embedded: list[int] = []  # the samples of every embed_speaker call
        self.speakers_fail = False

    def _arrive(self, start: bool, end: bool) -> None:
        if end and not start and self.end_delay_s:
            time.sleep(self.end_delay_s)

    def vad(self, sequence_id, audio, start, end):
        self._arrive(start, end)
        return self.vad_sequences.request(sequence_id, start, end, Segmenter).process(audio, end)

    def whisper(self, request, partial=False):
        assert self.whisper_gate.wait(30)
        words = words_in(request.audio)
        if self.whisper_fails & set(words):
            raise RuntimeError("scripted whisper failure")
        text = " ".join(words).capitalize() + ("" if partial else ".")
        return Transcription(text, "de", 0.0, -0.1)

    def embed_speaker(self, audio):
        """Two voices: the words of the first half of WORDS have one, the rest the other."""
        words = words_in(audio)
        voice = int(bool(words) and WORDS.index(words[0]) > len(WORDS) // 2)
        self.embedded.append(len(audio))
        if self.speakers_fail:
            raise RuntimeError("scripted speakers failure")
        return np.eye(256, dtype=np.float32)[voice]

    def translate(self, text, source, target, context="", glossary=None):
        next(self.calls)
        self.translations.append((text, target))
        assert self.llm_gate.wait(30)
        return f"{target.upper()} {text}"

    def summarize(self, text, source, target):
        """The LLM's answer for one piece: each line as an action item, so a test can see
        which lines reached it (and how the pieces were cut)."""
        self.summaries.append((text, target))
        assert self.llm_gate.wait(30)
        items = "\n".join(f"TASK: {target.upper()} {line} (line)" for line in text.splitlines())
        return f"ABOUT: {target.upper()} meeting of three\nDECISIONS:\n- none\n{items}"

    def enhance(
        self,
        sequence_id,
        step,
        source,
        target,
        start,
        end,
        check_complete=True,
        flush=True,
        glossary=None,
        translate_window=True,
    ):
        self._arrive(start, end)
        enhancer = self.enhance_sequences.request(
            sequence_id,
            start,
            end,
            lambda: Enhancer(self.window, lambda text, ctx: self.translate(text, source, target), lambda text: False),
        )
        out = enhancer.step(step, check_complete, translate_window)
        return out + (enhancer.flush() if end and flush else [])

    def unended(self) -> set[int]:
        return self.vad_sequences.unended() | self.enhance_sequences.unended()


class FailingStore(SessionStore):
    """A store whose disk fills up after `ok` events."""

    def __init__(self, path, ok: int = 10**6, fsync: bool = True):
        super().__init__(path, hub=Hub(), fsync=fsync)
        self.ok = ok

    def append(self, session, event):
        if self.ok <= 0:
            raise OSError(28, "No space left on device")
        self.ok -= 1
        super().append(session, event)


class Collect:
    """A request's reply: events into a shared list; closed once."""

    def __init__(self, sink: list):
        self.sink, self.closed, self.cancelled = sink, threading.Event(), False

    def send(self, event: Event) -> None:
        assert not self.closed.is_set(), f"{event} sent after the final flag"
        self.sink.append(event)

    def close(self) -> None:
        assert not self.closed.is_set(), "closed twice"
        self.closed.set()

    def is_cancelled(self) -> bool:
        return self.cancelled


def speech(word: int, seconds: float = 1.0) -> np.ndarray:
    return np.full(int(seconds * SAMPLE_RATE_HZ), word, np.int16)


def silence(seconds: float = 1.0) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE_HZ), np.int16)


def kinds(events: list[Event], kind: EventKind) -> list[Event]:
    return [e for e in events if e.kind == kind]


def wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Speaker:
    """A client of one stream: each chunk waits for its reply's final flag (as the real
    client paces itself), and the simulated clock moves with the audio sent."""

    def __init__(
        self,
        pipeline,
        clock: Clock,
        sequence_id: int,
        session: str = "talk",
        *,
        translate: bool = True,
        partials: bool = False,
        segment_base: int = 0,
        time_base_s: float = 0.0,
        speakers: bool = False,
        store: bool = True,
    ):
        from livetranslate.protocol import SessionOptions

        self.pipeline, self.clock, self.sequence_id = pipeline, clock, sequence_id
        self.options = SessionOptions(
            session,
            translate=translate,
            partials=partials,
            segment_base=segment_base,
            time_base_s=time_base_s,
            speakers=speakers,
            store=store,
        ).to_tensors()
        self.events: list[Event] = []
        self.replies: list[Collect] = []

    def send(self, audio: np.ndarray, end: bool = False, wait: bool = True) -> Collect:
        from livetranslate.protocol import AUDIO

        first = not self.replies
        reply = Collect(self.events)
        self.replies.append(reply)
        self.pipeline.handle(self.sequence_id, first, end, {AUDIO: audio, **(self.options if first else {})}.get, reply)
        if wait:
            assert reply.closed.wait(5), "no final flag for a processed chunk"
        self.clock.advance(len(audio) / SAMPLE_RATE_HZ)
        return reply

    def say(self, *words: int, wait: bool = True) -> None:
        for word in words:
            self.send(speech(word), wait=wait)
            self.send(silence(), wait=wait)

    def quiet(self, seconds: int) -> None:
        for _ in range(seconds):
            self.send(silence())

    def end(self) -> list[Event]:
        self.send(np.zeros(0, np.int16), end=True)
        assert wait_for(lambda: self.events and self.events[-1].kind == EventKind.END), self.events[-5:]
        return self.events


# fixtures for the spec tests (import them by name)
@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def stages(clock):
    return ScriptedStages(clock)
