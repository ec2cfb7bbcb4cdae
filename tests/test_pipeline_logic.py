"""The stream logic of `pipeline` in-process with the real VAD and Whisper (no Triton)."""

import threading
from pathlib import Path

import numpy as np
import pytest
from scripted import Collect

from livetranslate import protocol as P
from livetranslate.audio import chunks, read_audio
from livetranslate.pipeline import LocalStages, Pipeline
from livetranslate.protocol import EventKind, SessionOptions


def run_stream(pipeline, stream_id, pcm, rate, language="de", chunk=4410, translate=True):
    events, replies = [], []
    options = SessionOptions(f"s{stream_id}", rate, language, translate=translate).to_tensors()
    parts = list(chunks(pcm, chunk))
    for i, part in enumerate(parts + [np.zeros(0, np.int16)]):
        tensors = {P.AUDIO: part, **(options if i == 0 else {})}
        reply = Collect(events)
        replies.append(reply)
        pipeline.handle(stream_id, i == 0, i == len(parts), tensors.get, reply)
    for reply in replies:
        assert reply.closed.wait(120)
    return events


@pytest.mark.slow
def test_stream_events_in_order_and_end(whisper_engine, audio_files):
    pipeline = Pipeline(LocalStages(whisper_engine))
    pcm, rate = read_audio(audio_files["speech"])
    events = run_stream(pipeline, 1, pcm, rate, translate=False)
    kinds = [e.kind for e in events]
    assert kinds[-1] == EventKind.END and kinds.count(EventKind.END) == 1
    transcripts = [e for e in events if e.kind == EventKind.TRANSCRIPT]
    assert [e.segment_id for e in transcripts] == list(range(len(transcripts))) and len(transcripts) == 5
    assert all(a.end_s <= b.start_s for a, b in zip(transcripts, transcripts[1:]))
    assert len(pipeline.streams) == 0  # freed on end


def test_unstarted_stream_and_bad_options_are_errors():
    pipeline = Pipeline(LocalStages(engine=None))
    events = []
    pipeline.handle(5, False, False, {P.AUDIO: np.zeros(10, np.int16)}.get, Collect(events))
    assert events[0].kind == EventKind.ERROR and "no open stream" in events[0].text
    events.clear()
    bad = {P.AUDIO: np.zeros(10, np.int16), **SessionOptions("x").to_tensors(), P.SAMPLE_RATE: np.array([5], np.int32)}
    pipeline.handle(6, True, False, bad.get, Collect(events))
    assert events[0].kind == EventKind.ERROR and "SAMPLE_RATE 5 Hz" in events[0].text
    assert len(pipeline.streams) == 0


@pytest.mark.slow
def test_a_hanging_llm_times_out_and_the_stream_goes_on(whisper_engine, audio_files):
    from livetranslate.pipeline import PipelineOptions

    release = threading.Event()

    class Hanging:
        def translate(self, text, source, target, context="", glossary=None):
            release.wait(30)
            return "too late"

    class NeverComplete:
        def check(self, text, source):
            return False, 0.0

    pipeline = Pipeline(
        LocalStages(whisper_engine, translator=Hanging(), checker=NeverComplete()), PipelineOptions(llm_timeout_s=0.5)
    )
    pcm, rate = read_audio(audio_files["speech_b"])
    events = run_stream(pipeline, 3, pcm, rate)
    release.set()
    transcripts = [e for e in events if e.kind == EventKind.TRANSCRIPT]
    translations = [e for e in events if e.kind == EventKind.TRANSLATION]
    assert len(transcripts) == 3 and len(translations) == 3
    assert all(t.error and not t.text for t in translations)
    # the speaker's translations wait out their timeout until two in a row did; then their
    # breaker opens and the rest fail at once instead of waiting 0.5 s each (the enhance steps
    # beside them count their timeouts on the background breaker)
    assert "translation failed: no answer within" in translations[0].error
    assert sum("no answer within" in t.error for t in translations) <= 2
    assert "calls paused" in translations[-1].error
    assert pipeline.shared.breaker.is_open
    assert events[-1].kind == EventKind.END


def test_the_llm_breaker_opens_after_timeouts_in_a_row_and_retries_after_the_pause():
    from livetranslate.pipeline import LlmBreaker, LlmUnavailable

    now = [0.0]
    breaker = LlmBreaker(timeouts_to_open=2, pause_s=30.0, clock=lambda: now[0])
    breaker.timed_out()
    breaker.answered()  # an answer in between: not in a row
    breaker.timed_out()
    breaker.check()
    breaker.timed_out()
    with pytest.raises(LlmUnavailable, match="next try in 30 s"):
        breaker.check()
    now[0] = 31.0
    breaker.check()  # the pause is over: calls go through again
    breaker.timed_out()  # and one more timeout opens it at once
    with pytest.raises(LlmUnavailable):
        breaker.check()
    now[0] = 62.0
    breaker.answered()
    breaker.timed_out()
    breaker.check()  # an answer closed it: two in a row are needed again


def test_whisper_load_lets_partials_run_only_when_whisper_is_mostly_idle():
    import time

    from livetranslate.pipeline import WhisperLoad

    load = WhisperLoad(window_s=1.0)
    assert load.allows_partial(0.5)
    with load.decoding(final=True):
        assert not load.allows_partial(0.5)  # a final is under way: never
    assert load.allows_partial(0.5)  # that final took no time
    with load.decoding(final=False):
        time.sleep(0.6)
    assert not load.allows_partial(0.5)  # busy 60 % of the last second
    assert load.allows_partial(0.7)
    time.sleep(1.1)
    assert load.allows_partial(0.5)  # that decode left the window


@pytest.mark.slow
def test_a_pause_publishes_the_enhanced_window_before_the_speaker_goes_on(whisper_engine, audio_files):
    """The window is translated when the speaker has been silent for `pause_s`, not only when
    the next utterance (or the end of the stream) arrives."""

    class Echo:
        def translate(self, text, source, target, context="", glossary=None):
            return f"EN {text}"

    class NeverComplete:
        def check(self, text, source):
            return False, 0.0

    pipeline = Pipeline(LocalStages(whisper_engine, translator=Echo(), checker=NeverComplete()))
    pcm, rate = read_audio(audio_files["speech_b"])
    pcm = np.concatenate([pcm, np.zeros(4 * rate, np.int16)])  # the speaker stops for 4 s
    events, replies = [], []
    options = SessionOptions("pause", rate, "de", partials=False).to_tensors()
    for i, part in enumerate(chunks(pcm, rate // 10)):
        replies.append(Collect(events))
        pipeline.handle(9, i == 0, False, {P.AUDIO: part, **(options if i == 0 else {})}.get, replies[-1])
    for reply in replies:  # every chunk answered: the stream is not ended yet
        assert reply.closed.wait(120)
    transcripts = [e for e in events if e.kind == EventKind.TRANSCRIPT]
    enhanced = [e for e in events if e.kind == EventKind.ENHANCED]
    assert len(transcripts) == 3 and enhanced and not enhanced[-1].error
    assert enhanced[-1].segment_id == transcripts[-1].segment_id  # the whole window, before the end
    last = Collect(events)
    pipeline.handle(9, False, True, {P.AUDIO: np.zeros(0, np.int16)}.get, last)
    assert last.closed.wait(60) and events[-1].kind == EventKind.END


def test_every_stage_set_satisfies_the_stage_interface():
    """The pipeline calls its stages through one declared interface (pipeline.stages.Stages):
    the scripted set of these tests, the in-process set and the Triton set all satisfy it."""
    from scripted import Clock, ScriptedStages

    from livetranslate.pipeline.stages import LocalStages, Stages

    assert isinstance(ScriptedStages(Clock()), Stages) and isinstance(LocalStages(engine=None), Stages)
    assert not isinstance(object(), Stages)
    bls = (Path(__file__).resolve().parents[1] / "livetranslate" / "triton" / "bls.py").read_text()
    needed = [
        name for name in ("vad", "whisper", "translate", "translate_urgent", "enhance") if f"    def {name}(" not in bls
    ]
    assert needed == []  # TritonStages imports Triton's own module: checked by its source here


def test_a_pipeline_without_a_store_keeps_nothing_and_refuses_viewers():
    from livetranslate.store import NoStore, Store

    store: Store = NoStore()
    assert store.keeps is False and store.resume_point("any") == (0, 0.0) and store.events("any") == []
