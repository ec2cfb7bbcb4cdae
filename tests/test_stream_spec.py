"""What a speaker stream promises, checked through the stage seam with scripted stages on a
simulated clock (tests/scripted.py): no Whisper, no LLM, no server; fast."""

import threading

import numpy as np
import pytest
from scripted import (  # noqa: F401 (pytest fixtures, taken by name)
    Clock,
    Collect,
    FailingStore,
    ScriptedStages,
    Speaker,
    clock,
    kinds,
    silence,
    speech,
    stages,
    wait_for,
)

from livetranslate.pipeline import Limits, Pipeline, PipelineOptions
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.protocol import EventKind
from livetranslate.stages.enhance import WindowOptions
from livetranslate.store import Hub, SessionStore

# the cheap decoding policy: each utterance is decoded alone, so the scripted whisper hears
# exactly its words
DECODE = DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)
BEFORE: set[threading.Thread] = set()


def make_pipeline(stages, clock, store=None, **options):
    return Pipeline(stages, PipelineOptions(decode=options.pop("decode", DECODE), **options), store=store, clock=clock)


@pytest.fixture(autouse=True)
def threads_before():
    """The threads that ran before the test: the test's own must all be gone at its end."""
    global BEFORE
    BEFORE = set(threading.enumerate())


def new_threads() -> list[str]:
    return sorted(t.name for t in set(threading.enumerate()) - BEFORE)


def assert_all_freed(pipeline, stages):
    """Every stream closed: its sequences ended explicitly, its threads (workers, LLM calls,
    viewers) gone, its admission and segment ids given back."""
    assert wait_for(lambda: not pipeline.open_streams()), pipeline.open_streams()
    assert stages.unended() == set()
    assert wait_for(lambda: not new_threads()), new_threads()
    assert wait_for(lambda: pipeline.admission.counts() == (0, 0)), pipeline.admission.counts()
    assert pipeline.shared.ids._next == {}


def test_each_kind_comes_in_segment_order_and_end_comes_last(stages, clock):
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 1)
    speaker.say(1, 2, 3)
    speaker.quiet(4)  # a pause: the window is published before the speaker goes on
    speaker.say(4, 5)
    events = speaker.end()
    assert [e.text for e in kinds(events, EventKind.TRANSCRIPT)] == ["Hallo.", "Welt.", "Guten.", "Morgen.", "Liebe."]
    for kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION):
        assert [e.segment_id for e in kinds(events, kind)] == [0, 1, 2, 3, 4]
    assert [e.text for e in kinds(events, EventKind.TRANSLATION)][0] == "EN Hallo."
    enhanced = kinds(events, EventKind.ENHANCED)
    assert [(e.first_segment_id, e.segment_id) for e in enhanced] == [(0, 2), (3, 4)]
    assert enhanced[0].text == "EN Hallo. Welt. Guten."
    # the first window went out during the pause, before the next utterance's transcript
    assert events.index(enhanced[0]) < events.index(kinds(events, EventKind.TRANSCRIPT)[3])
    assert [e.kind for e in events].count(EventKind.END) == 1 and events[-1].kind == EventKind.END
    assert not kinds(events, EventKind.ERROR) and not [e for e in events if e.error]
    assert all(reply.closed.is_set() for reply in speaker.replies)
    assert_all_freed(pipeline, stages)


def test_partials_carry_their_transcripts_id_and_never_follow_it(stages, clock):
    decode = DecodeOptions(
        policy="utterance", lead_in_s=0.0, prompt_segments=0, partial_interval_s=1.0, partial_min_s=1.0
    )
    pipeline = make_pipeline(stages, clock, decode=decode)
    speaker = Speaker(pipeline, clock, 2, translate=False, partials=True)
    for word in (1, 2):
        for i in range(4):  # 2 s of one word, in half seconds
            count = len(kinds(speaker.events, EventKind.PARTIAL))
            speaker.send(speech(word, 0.5))
            if i % 2:  # a partial is due every second of speech
                assert wait_for(lambda count=count: len(kinds(speaker.events, EventKind.PARTIAL)) > count)
        speaker.send(silence())
    events = speaker.end()
    partials, transcripts = kinds(events, EventKind.PARTIAL), kinds(events, EventKind.TRANSCRIPT)
    assert [e.text for e in transcripts] == ["Hallo.", "Welt."] and len(partials) >= 4
    for partial in partials:
        final = next(t for t in transcripts if t.segment_id == partial.segment_id)
        assert events.index(partial) < events.index(final) and final.text.startswith(partial.text)
    assert_all_freed(pipeline, stages)


def test_a_transcript_never_waits_for_a_translation(stages, clock):
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 3)
    stages.llm_gate.clear()  # the LLM hangs
    speaker.say(1, 2, 3, wait=False)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSCRIPT)) == 3)
    assert kinds(speaker.events, EventKind.TRANSLATION) == []
    stages.llm_gate.set()
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSLATION)) == 3)
    events = speaker.end()
    assert [e.segment_id for e in kinds(events, EventKind.TRANSLATION)] == [0, 1, 2]
    assert not [e for e in events if e.error]
    assert_all_freed(pipeline, stages)


@pytest.mark.parametrize("path", ["end", "idle client", "idle server", "replaced", "store failure", "shutdown"])
def test_every_path_closes_the_stream_and_frees_all_it_held(stages, clock, tmp_path, path):
    store = FailingStore(tmp_path, fsync=False)
    # the audio worker wakes every keepalive_s / 2 (wall time) when no request comes
    pipeline = make_pipeline(
        stages, clock, store=store, session_ttl_s=60.0, keepalive_s=0.2 if path == "idle server" else 30.0
    )
    speaker = Speaker(pipeline, clock, 4, session="closing", partials=True)
    speaker.say(1, 2)
    if path == "end":
        speaker.end()
    elif path == "idle client":  # the client vanished: its stream expires with the next request
        clock.advance(61)
        Speaker(pipeline, clock, 5, session="other").end()
    elif path == "idle server":  # ... or by itself when no request comes at all
        clock.advance(61)
    elif path == "replaced":  # a START on a live sequence id: the new stream is not touched by the old one's end
        stages.end_delay_s = 0.1  # the old stream's ends arrive after the new stream started
        replacing = Speaker(pipeline, clock, 4, session="other")
        replacing.say(3, 4)
        assert not [e for e in replacing.end() if e.error or e.kind == EventKind.ERROR]
        assert [e.text for e in kinds(replacing.events, EventKind.TRANSCRIPT)] == ["Guten.", "Morgen."]
    elif path == "store failure":
        store.ok = 0
        speaker.say(3)
    else:
        pipeline.shutdown()
    assert_all_freed(pipeline, stages)
    stored = store.events("closing")
    assert store.info("closing").state == "ended"
    assert stored[-1].kind == EventKind.END or path == "store failure"
    reasons = {
        "end": "",
        "idle client": "timed out",
        "idle server": "timed out",
        "replaced": "same sequence id",
        "shutdown": "shut down",
    }
    if path in reasons:
        assert reasons[path] in stored[-1].error and [e.kind for e in stored].count(EventKind.END) == 1
    else:
        assert "could not be stored" in speaker.events[-1].error
    assert all(reply.closed.is_set() for reply in speaker.replies)


def test_a_long_silence_expires_nothing_under_the_stream(stages, clock):
    """Speech, 15 minutes of silence (the capture keeps sending), speech: every stage's
    idle timeout passes more than once, and nothing of the stream expires."""
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 6)
    speaker.say(1, 2, 3)
    speaker.quiet(15 * 60)
    speaker.say(4, 5, 6)
    events = speaker.end()
    assert not [e for e in events if e.error or e.kind == EventKind.ERROR], [e for e in events if e.error][:3]
    assert [e.segment_id for e in kinds(events, EventKind.TRANSLATION)] == [0, 1, 2, 3, 4, 5]
    enhanced = kinds(events, EventKind.ENHANCED)
    assert [(e.first_segment_id, e.segment_id) for e in enhanced] == [(0, 2), (3, 5)]
    assert enhanced[1].text == "EN Morgen. Liebe. Leute."
    # one sequence each, started once and ended once
    for sequences in (stages.vad_sequences, stages.enhance_sequences):
        flags = [(start, end) for _, start, end in sequences.flags]
        assert flags.count((True, False)) == 1 and sum(end for _, end in flags) == 1
    assert_all_freed(pipeline, stages)


def test_without_its_keepalive_the_enhance_sequence_would_expire_and_be_started_again(stages, clock):
    """The scripted stages do drop an idle sequence: with the keep-alive off, the stream meets
    Triton's error and starts the sequence again (its window was published already)."""
    pipeline = make_pipeline(stages, clock, keepalive_s=10_000.0)
    speaker = Speaker(pipeline, clock, 7)
    speaker.say(1)
    speaker.quiet(15 * 60)
    speaker.say(2)
    events = speaker.end()
    assert not [e for e in events if e.error or e.kind == EventKind.ERROR]
    assert [(e.first_segment_id, e.segment_id) for e in kinds(events, EventKind.ENHANCED)] == [(0, 0), (1, 1)]
    starts = [start for _, start, _ in stages.enhance_sequences.flags]
    assert starts.count(True) == 2


def test_a_stage_that_lost_the_streams_sequences_gets_them_again(stages, clock):
    """A stage whose process died is reloaded empty: the stream starts its sequences again,
    and the audio clock goes on where it was."""
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 11)
    speaker.say(1, 2)
    stages.vad_sequences.held.clear()
    stages.enhance_sequences.held.clear()
    speaker.say(3, 4)
    events = speaker.end()
    assert not [e for e in events if e.error or e.kind == EventKind.ERROR]
    transcripts = kinds(events, EventKind.TRANSCRIPT)
    assert [(t.text, t.start_s, t.end_s) for t in transcripts] == [
        ("Hallo.", 0.0, 2.0),
        ("Welt.", 2.0, 4.0),
        ("Guten.", 4.0, 6.0),
        ("Morgen.", 6.0, 8.0),
    ]
    assert kinds(events, EventKind.ENHANCED)[-1].segment_id == 3
    assert_all_freed(pipeline, stages)


def test_a_restarted_viewer_gets_the_history_then_the_live_events(stages, clock, tmp_path):
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    pipeline = make_pipeline(stages, clock, store=store)
    speaker = Speaker(pipeline, clock, 8, session="watched")
    speaker.say(1, 2)
    first, restarted = [], []
    viewer = Collect(first)
    pipeline.handle(100, True, True, {"SUBSCRIBE": np.array([b"watched"], dtype=np.object_)}.get, viewer)
    assert wait_for(lambda: len(kinds(first, EventKind.TRANSLATION)) == 2)
    viewer.cancelled = True  # the viewer's page reloads
    assert viewer.closed.wait(5)
    speaker.say(3)
    again = Collect(restarted)
    pipeline.handle(101, True, True, {"SUBSCRIBE": np.array([b"watched"], dtype=np.object_)}.get, again)
    assert wait_for(lambda: len(kinds(restarted, EventKind.TRANSCRIPT)) == 3)
    speaker.say(4)
    spoken = speaker.end()
    assert again.closed.wait(5)
    assert restarted == [e for e in spoken if e.kind != EventKind.PARTIAL]  # all of it, once, in order
    assert_all_freed(pipeline, stages)


def test_a_live_viewer_reads_the_interim_text_which_is_never_stored(stages, clock, tmp_path):
    """The captions page shows what is being said before it is final: a viewer gets the
    speaker's partials live; the stored session, and so a later viewer's history, has none."""
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    decode = DecodeOptions(
        policy="utterance", lead_in_s=0.0, prompt_segments=0, partial_interval_s=1.0, partial_min_s=1.0
    )
    pipeline = make_pipeline(stages, clock, store=store, decode=decode)
    speaker = Speaker(pipeline, clock, 12, session="interim", translate=False, partials=True)
    speaker.say(1)
    seen = []
    viewer = Collect(seen)
    pipeline.handle(102, True, True, {"SUBSCRIBE": np.array([b"interim"], dtype=np.object_)}.get, viewer)
    assert wait_for(lambda: len(kinds(seen, EventKind.TRANSCRIPT)) == 1)
    for _ in range(4):  # 2 s of one word: a partial every second
        speaker.send(speech(2, 0.5))
    speaker.send(silence())
    spoken = speaker.end()
    assert viewer.closed.wait(5)
    live = kinds(seen, EventKind.PARTIAL)
    assert live and all(p.segment_id == 1 for p in live) and set(live) <= set(kinds(spoken, EventKind.PARTIAL))
    assert seen.index(live[-1]) < seen.index(kinds(seen, EventKind.TRANSCRIPT)[1])
    assert not kinds(store.events("interim"), EventKind.PARTIAL)
    assert_all_freed(pipeline, stages)


def test_a_reconnecting_client_continues_its_session(stages, clock, tmp_path):
    """The connection drops mid-session; the client reconnects on a new sequence with the
    same session name and goes on. The old stream times out while the new one is live: that
    ends nothing. Segment ids go on without a repeat, and the session ends once."""
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    pipeline = make_pipeline(stages, clock, store=store, session_ttl_s=60.0, limits=Limits(max_streams_per_session=2))
    old = Speaker(pipeline, clock, 9, session="meeting")
    old.say(1, 2)  # then the network drops: no end
    new = Speaker(pipeline, clock, 10, session="meeting", segment_base=2, time_base_s=4.0)
    new.say(3)
    new.quiet(70)  # meanwhile the old stream times out
    assert wait_for(lambda: len(pipeline.open_streams()) == 1)
    assert store.info("meeting").state == "live"
    new.say(4)
    new.end()
    stored = store.events("meeting")
    assert [e.segment_id for e in kinds(stored, EventKind.TRANSCRIPT)] == [0, 1, 2, 3]
    assert [e.text for e in kinds(stored, EventKind.TRANSCRIPT)] == ["Hallo.", "Welt.", "Guten.", "Morgen."]
    assert [e.kind for e in stored].count(EventKind.END) == 1 and not stored[-1].error
    assert store.info("meeting").state == "ended"
    assert_all_freed(pipeline, stages)


class StreamingStages(ScriptedStages):
    """The scripted stages with the speaker's urgent translation: it streams its words, and
    says which model it used; the enhance window's translations wait while `enhance_gate` is clear."""

    def __init__(self, clock):
        super().__init__(clock)
        self.enhance_gate = threading.Event()
        self.enhance_gate.set()
        self.fast_calls: list[bool] = []

    def translate_urgent(self, text, source, target, glossary=None, *, fast=False, on_interim=None):
        from livetranslate.pipeline.stages import SpokenTranslation

        self.fast_calls.append(fast)
        words = f"{target.upper()} {text}".split()
        for i in range(1, len(words)):
            if on_interim is not None:
                on_interim(" ".join(words[:i]))
        return SpokenTranslation(self.translate(text, source, target), fast)

    def enhance(self, *args, **kwargs):
        assert self.enhance_gate.wait(30)
        return super().enhance(*args, **kwargs)


@pytest.mark.parametrize("partials", [True, False])
def test_interim_translations_come_before_their_translation_and_only_with_partials(clock, partials):
    stages = StreamingStages(clock)
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 11, partials=partials)
    speaker.say(1, 2)
    events = speaker.end()
    interims = kinds(events, EventKind.PARTIAL_TRANSLATION)
    translations = kinds(events, EventKind.TRANSLATION)
    assert [e.text for e in translations] == ["EN Hallo.", "EN Welt."]
    if not partials:
        assert interims == []
    else:
        assert [e.text for e in interims] == ["EN", "EN"]
        for interim in interims:
            final = next(t for t in translations if t.segment_id == interim.segment_id)
            assert events.index(interim) < events.index(final) and final.text.startswith(interim.text)
            assert interim.language == "en"
    assert_all_freed(pipeline, stages)


def test_the_next_translation_never_waits_for_an_enhanced_window(clock):
    stages = StreamingStages(clock)
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 12)
    stages.enhance_gate.clear()  # the enhanced window's LLM call hangs
    speaker.say(1, 2, 3, wait=False)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSLATION)) == 3)
    assert kinds(speaker.events, EventKind.ENHANCED) == []
    stages.enhance_gate.set()
    events = speaker.end()
    assert [(e.first_segment_id, e.segment_id) for e in kinds(events, EventKind.ENHANCED)] == [(0, 2)]
    assert not [e for e in events if e.error]
    assert_all_freed(pipeline, stages)


def test_a_stream_whose_translations_fall_behind_gets_the_small_model_and_says_so(clock):
    stages = StreamingStages(clock)
    pipeline = make_pipeline(stages, clock, translation_budget_s=0.2, basic_model="auto")
    speaker = Speaker(pipeline, clock, 13)
    stages.llm_gate.clear()  # the LLM is slow: the transcripts wait
    speaker.say(1, 2, wait=False)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.TRANSCRIPT)) == 2)
    import time

    time.sleep(0.3)  # longer than the budget
    stages.llm_gate.set()
    events = speaker.end()
    translations = kinds(events, EventKind.TRANSLATION)
    assert stages.fast_calls[-1] is True
    assert "small model" in translations[-1].note and translations[-1].text == "EN Welt."
    assert_all_freed(pipeline, stages)


def test_a_window_that_closes_far_behind_the_speech_is_dropped_untranslated(clock, monkeypatch):
    from livetranslate.pipeline import translator

    stages = StreamingStages(clock)
    stages.window = WindowOptions(min_words=1, sentence_end_closes=True)  # each sentence closes its window
    pipeline = make_pipeline(stages, clock)
    speaker = Speaker(pipeline, clock, 14)
    speaker.say(1)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.ENHANCED)) == 1)
    monkeypatch.setattr(translator, "ENHANCE_MAX_LAG_S", -1.0)  # from now on every step is "too late"
    speaker.say(2, 3)
    events = speaker.end()
    assert [e.text for e in kinds(events, EventKind.TRANSLATION)] == ["EN Hallo.", "EN Welt.", "EN Guten."]
    assert [e.text for e in kinds(events, EventKind.ENHANCED)] == ["EN Hallo."]  # the late windows: none
    assert_all_freed(pipeline, stages)


def test_background_llm_timeouts_pause_the_enhanced_windows_and_never_the_sentence_translations(clock):
    """An LLM too busy for its background work (the enhance steps time out) still makes the
    speaker's translations; the limit each call had travels into the stage with it."""
    from livetranslate import deadline

    stages = StreamingStages(clock)
    stages.window = WindowOptions(min_words=1, sentence_end_closes=True)
    limits = []
    enhance = stages.enhance
    stages.enhance = lambda *args, **kwargs: (limits.append(deadline.remaining()), enhance(*args, **kwargs))[1]
    pipeline = make_pipeline(stages, clock, llm_timeout_s=0.2, llm_timeouts_to_pause=2, llm_pause_s=60.0)
    speaker = Speaker(pipeline, clock, 15)
    stages.enhance_gate.clear()  # every enhance step hangs
    speaker.say(1, 2, 3, 4)
    assert wait_for(lambda: len(kinds(speaker.events, EventKind.ENHANCED)) == 4)
    assert pipeline.shared.background_breaker.is_open and not pipeline.shared.breaker.is_open
    assert pipeline.gauges().llm_background_breaker_open and not pipeline.gauges().llm_breaker_open
    stages.enhance_gate.set()
    events = speaker.end()
    assert [(e.text, e.error) for e in kinds(events, EventKind.TRANSLATION)] == [
        ("EN Hallo.", ""),
        ("EN Welt.", ""),
        ("EN Guten.", ""),
        ("EN Morgen.", ""),
    ]
    failed = [e.error for e in kinds(events, EventKind.ENHANCED)]
    assert all("enhanced translation failed" in error for error in failed)
    # a failed one is in the stream's language too: a viewer reading English gets it
    assert {(e.language, e.start_s < e.end_s) for e in kinds(events, EventKind.ENHANCED)} == {("en", True)}
    assert sum("no answer within" in error for error in failed) == 2  # then the breaker refused at once
    assert limits and all(0 < left <= 0.2 for left in limits)  # each step knew its limit
    assert_all_freed(pipeline, stages)
