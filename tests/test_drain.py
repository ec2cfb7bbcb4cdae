"""A stopping server's drain, through the stage seam (tests/scripted.py): Triton waits for
every sequence still open before it unloads `pipeline`, so the launcher asks the pipeline
to end them all first, after a grace in which new speakers and viewers are refused and the
live streams carry on. Fast: no server (the real stop is timed in test_serve.py)."""

import threading
import time

import numpy as np
from scripted import Clock, Collect, ScriptedStages, Speaker, kinds, speech, wait_for

from livetranslate.pipeline import Limits, Pipeline, PipelineOptions
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.protocol import AUDIO, DRAIN, DRAIN_GRACE_S, SUBSCRIBE, EventKind
from livetranslate.store import Hub, SessionStore

DECODE = DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)


def drain_request(pipeline, sequence_id, internal, grace_s=None, wait=True):
    events = []
    reply = Collect(events)
    tensors = {AUDIO: np.zeros(0, np.int16), DRAIN: np.array([True])}
    if grace_s is not None:
        tensors[DRAIN_GRACE_S] = np.array([grace_s], np.float32)
    pipeline.handle(sequence_id, True, True, tensors.get, reply, internal=lambda: internal)
    if wait:
        assert reply.closed.wait(10)
        return events
    return events, reply


class SharedStore(SessionStore):
    """A store several servers share (as the Redis one): a session whose stream moves on
    is handed over, not ended."""

    shared = True

    def __init__(self, path):
        super().__init__(path, hub=Hub(), fsync=False)
        self.handed_over: list[tuple[str, str]] = []

    def handover(self, session, reason):
        self.handed_over.append((session, reason))


def test_a_drain_ends_every_stream_viewer_and_open_sequence(tmp_path):
    clock = Clock()
    stages = ScriptedStages(clock)
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    ended: list[int] = []
    pipeline = Pipeline(
        stages,
        PipelineOptions(decode=DECODE, limits=Limits(max_streams=1)),
        store=store,
        clock=clock,
        end_sequence=ended.append,
    )
    live = Speaker(pipeline, clock, 11, session="live")
    live.say(1, 2)
    refused = Speaker(pipeline, clock, 12, session="second")  # server full: its sequence is ended at once
    refused.send(speech(1))
    assert "server full" in refused.events[-1].error
    assert wait_for(lambda: ended == [12])
    seen: list = []
    viewer = Collect(seen)
    pipeline.handle(14, True, True, {SUBSCRIBE: np.array([b"live"], dtype=np.object_)}.get, viewer)
    assert wait_for(lambda: len(kinds(seen, EventKind.TRANSCRIPT)) == 2)

    outsider = drain_request(pipeline, 15, internal=False)
    assert outsider[-1].kind == EventKind.ERROR and "for the server's own launcher" in outsider[-1].text
    assert not pipeline.stopping and ended == [12]

    answer = drain_request(pipeline, 16, internal=True)
    assert answer[-1].kind == EventKind.END and answer[-1].text == "drained: 1 sequences ended"
    assert sorted(ended) == [11, 12]
    assert viewer.closed.wait(5)
    assert seen[-1].kind == EventKind.END
    assert seen[-1].error.startswith("the server is shutting down")  # the session's end, or the viewer's own
    assert wait_for(lambda: not pipeline.open_streams())
    assert stages.unended() == set()  # the stream's vad and enhance sequences were ended
    assert store.info("live").state == "ended" and "shutting down" in store.events("live")[-1].error

    # until Triton has stopped: new speakers and viewers are told to come back
    late = Speaker(pipeline, clock, 17, session="late")
    late.send(speech(1))
    assert late.events[-1].kind == EventKind.END
    assert late.events[-1].error == "the server is shutting down: connect to another server, or try again in a moment"
    # a refused sequence is ended at once, as its client would: the drain is over, and Triton
    # would wait for it until its exit timeout
    assert wait_for(lambda: 17 in ended) and sorted(ended) == [11, 12, 17]
    watcher: list = []
    pipeline.handle(18, True, True, {SUBSCRIBE: np.array([b"live"], dtype=np.object_)}.get, Collect(watcher))
    assert watcher[-1].error == "the server is shutting down: connect to another server, or try again in a moment"


def test_sequences_ended_by_their_clients_or_expired_are_not_ended_again(tmp_path):
    clock = Clock()
    stages = ScriptedStages(clock)
    ended: list[int] = []
    pipeline = Pipeline(
        stages, PipelineOptions(decode=DECODE, session_ttl_s=60.0), clock=clock, end_sequence=ended.append
    )
    finished = Speaker(pipeline, clock, 21, session="a")
    finished.say(1)
    finished.end()
    idle = Speaker(pipeline, clock, 22, session="b")
    idle.say(2)
    clock.advance(61)  # Triton drops an idle sequence; so does the pipeline's count of them
    answer = drain_request(pipeline, 23, internal=True)
    assert answer[-1].text == "drained: 0 sequences ended" and ended == []


class SlowWhisper(ScriptedStages):
    """Whisper waits for `gate`: a decode in progress on a busy server."""

    def __init__(self, clock):
        super().__init__(clock)
        self.gate, self.decodes = __import__("threading").Event(), 0

    def whisper(self, request, partial=False):
        self.decodes += 1
        assert self.gate.wait(30)
        return super().whisper(request, partial)


def test_an_abandoned_stream_drops_the_audio_still_waiting():
    """A drain (or any abandon) does not decode what the client had queued: those chunks'
    replies get their final flag at once, and the stream stops after its current call."""
    clock = Clock()
    stages = SlowWhisper(clock)
    pipeline = Pipeline(stages, PipelineOptions(decode=DECODE), clock=clock, end_sequence=lambda _: None)
    speaker = Speaker(pipeline, clock, 31, session="queued", translate=False)
    speaker.say(1, wait=False)  # the utterance closes: its decode waits at the gate
    assert wait_for(lambda: stages.decodes == 1)
    queued = [speaker.send(speech(w), wait=False) for w in (2, 0, 3, 0, 4, 0)]
    assert not any(reply.closed.is_set() for reply in queued)
    for stream in pipeline.open_streams():
        stream.abandon("the server is shutting down")
    assert all(reply.closed.wait(1) for reply in queued)  # let go before the decode finished
    stages.gate.set()
    assert wait_for(lambda: not pipeline.open_streams())
    assert stages.decodes == 1 and stages.unended() == set()


def test_a_graceful_drain_refuses_newcomers_at_once_and_lets_live_streams_run_until_it_ends_them(tmp_path):
    """With a grace the drain answers at once that it refuses new speakers and viewers; the
    live stream and its viewer carry on; when the grace is cut short (the launcher's second
    signal: a drain with none), the stream is abandoned to move on: its session handed
    over to the next server, not ended."""
    clock = Clock()
    store = SharedStore(tmp_path)
    ended: list[int] = []
    pipeline = Pipeline(
        ScriptedStages(clock), PipelineOptions(decode=DECODE), store=store, clock=clock, end_sequence=ended.append
    )
    live = Speaker(pipeline, clock, 41, session="live", translate=False)
    live.say(1)
    seen: list = []
    viewer = Collect(seen)
    pipeline.handle(42, True, True, {SUBSCRIBE: np.array([b"live"], dtype=np.object_)}.get, viewer)
    assert wait_for(lambda: len(kinds(seen, EventKind.TRANSCRIPT)) == 1)

    graceful, reply = drain_request(pipeline, 43, internal=True, grace_s=60.0, wait=False)
    assert [e.kind for e in graceful] == [EventKind.PARTIAL]  # before anything else happens
    assert graceful[0].text == "refusing new speakers and viewers; 1 stream(s) live, ending them within 60 s"
    refusal = "the server is shutting down: connect to another server, or try again in a moment"
    newcomer = Speaker(pipeline, clock, 44, session="newcomer")
    newcomer.send(speech(1))
    assert [(e.kind, e.error) for e in newcomer.events] == [(EventKind.END, refusal)]
    watcher: list = []
    pipeline.handle(45, True, True, {SUBSCRIBE: np.array([b"live"], dtype=np.object_)}.get, Collect(watcher))
    assert [(e.kind, e.error) for e in watcher] == [(EventKind.END, refusal)]

    live.say(2, 3)  # the grace: the live stream is transcribed as before, and watched
    assert wait_for(lambda: len(kinds(live.events, EventKind.TRANSCRIPT)) == 3)
    assert wait_for(lambda: len(kinds(seen, EventKind.TRANSCRIPT)) == 3)
    assert not reply.closed.is_set() and not viewer.closed.is_set() and pipeline.open_streams()
    assert not any(e.error for e in live.events)

    began = time.monotonic()
    hurry = drain_request(pipeline, 46, internal=True, grace_s=0.0)
    assert reply.closed.wait(10) and time.monotonic() - began < 10
    # whichever of the two drains ends the live stream's open sequence ends it once; the
    # refused newcomer's (Triton holds it all the same) was ended with its refusal
    answers = sorted(e.text for e in (graceful[-1], hurry[-1]) if e.kind == EventKind.END and not e.error)
    assert answers == ["drained: 0 sequences ended", "drained: 1 sequences ended"]
    assert sorted(ended) == [41, 44]
    assert wait_for(lambda: not pipeline.open_streams())
    assert store.handed_over == [("live", "the server is shutting down")]  # moved on, not ended
    assert not [e for e in store.events("live") if e.kind == EventKind.END]  # no `end` stored for it
    assert viewer.closed.wait(5) and seen[-1].kind == EventKind.END  # the viewers end with the drain


def test_a_drain_ends_its_grace_when_the_last_stream_ends(tmp_path):
    clock = Clock()
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    pipeline = Pipeline(
        ScriptedStages(clock), PipelineOptions(decode=DECODE), store=store, clock=clock, end_sequence=lambda _: None
    )
    speaker = Speaker(pipeline, clock, 51, session="ending", translate=False)
    speaker.say(1)
    events, reply = drain_request(pipeline, 52, internal=True, grace_s=60.0, wait=False)
    time.sleep(0.3)
    assert not reply.closed.is_set()  # waiting for the live stream
    began = time.monotonic()
    speaker.say(2)
    speaker.end()  # its client ends it: flushed and ended as always
    assert reply.closed.wait(10) and time.monotonic() - began < 10
    assert events[-1].text == "drained: 0 sequences ended"
    assert [e.error for e in kinds(speaker.events, EventKind.END)] == [""]
    assert len(kinds(speaker.events, EventKind.TRANSCRIPT)) == 2
    assert store.info("ending").state == "ended" and not store.events("ending")[-1].error


def test_a_drain_without_streams_or_with_a_bad_grace(tmp_path):
    pipeline = Pipeline(ScriptedStages(Clock()), PipelineOptions(decode=DECODE), end_sequence=lambda _: None)
    bad = drain_request(pipeline, 61, internal=True, grace_s=float("nan"))
    assert bad[-1].kind == EventKind.ERROR and "DRAIN_GRACE_S must be" in bad[-1].text and not pipeline.stopping
    began = time.monotonic()
    answer = drain_request(pipeline, 62, internal=True, grace_s=60.0)  # nothing live: no wait
    assert answer[-1].text == "drained: 0 sequences ended" and time.monotonic() - began < 5


def test_a_shorter_grace_cuts_a_waiting_one_short():
    pipeline = Pipeline(ScriptedStages(Clock()), PipelineOptions(decode=DECODE), end_sequence=lambda _: None)
    Speaker(pipeline, Clock(), 71, session="s", translate=False).say(1)
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(pipeline.await_streams(60.0)))
    waiter.start()
    time.sleep(0.2)
    assert waiter.is_alive()
    assert pipeline.await_streams(0.0) is False  # a stream is still open
    waiter.join(5)
    assert not waiter.is_alive() and waited == [False]
