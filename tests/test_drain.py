"""A stopping server's drain, through the stage seam (tests/scripted.py): Triton waits for
every sequence still open before it unloads `pipeline`, so the launcher asks the pipeline
to end them all first. Fast: no server (the real stop is timed in test_serve.py)."""

import numpy as np

from livetranslate.pipeline import Limits, Pipeline, PipelineOptions
from livetranslate.protocol import AUDIO, DRAIN, SUBSCRIBE, EventKind
from livetranslate.store import Hub, SessionStore
from livetranslate.streaming import DecodeOptions

from scripted import Clock, Collect, ScriptedStages, Speaker, kinds, speech, wait_for

DECODE = DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)


def drain_request(pipeline, sequence_id, internal):
    events = []
    reply = Collect(events)
    pipeline.handle(sequence_id, True, True, {AUDIO: np.zeros(0, np.int16), DRAIN: np.array([True])}.get, reply,
                    internal=lambda: internal)
    assert reply.closed.wait(10)
    return events


def test_a_drain_ends_every_stream_viewer_and_open_sequence(tmp_path):
    clock = Clock()
    stages = ScriptedStages(clock)
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    ended: list[int] = []
    pipeline = Pipeline(stages, PipelineOptions(decode=DECODE, limits=Limits(max_streams=1)), store=store,
                        clock=clock, end_sequence=ended.append)
    live = Speaker(pipeline, clock, 11, session="live")
    live.say(1, 2)
    refused = Speaker(pipeline, clock, 12, session="second")  # server full: Triton holds its sequence all the same
    refused.send(speech(1))
    assert "server full" in refused.events[-1].error
    seen: list = []
    viewer = Collect(seen)
    pipeline.handle(14, True, True, {SUBSCRIBE: np.array([b"live"], dtype=np.object_)}.get, viewer)
    assert wait_for(lambda: len(kinds(seen, EventKind.TRANSCRIPT)) == 2)

    outsider = drain_request(pipeline, 15, internal=False)
    assert outsider[-1].kind == EventKind.ERROR and "for the server's own launcher" in outsider[-1].text
    assert not pipeline.stopping and not ended

    answer = drain_request(pipeline, 16, internal=True)
    assert answer[-1].kind == EventKind.END and answer[-1].text == "drained: 2 sequences ended"
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
    assert late.events[-1].error == "the server is shutting down: try again in a moment"
    watcher: list = []
    pipeline.handle(18, True, True, {SUBSCRIBE: np.array([b"live"], dtype=np.object_)}.get, Collect(watcher))
    assert watcher[-1].error == "the server is shutting down: try again in a moment"


def test_sequences_ended_by_their_clients_or_expired_are_not_ended_again(tmp_path):
    clock = Clock()
    stages = ScriptedStages(clock)
    ended: list[int] = []
    pipeline = Pipeline(stages, PipelineOptions(decode=DECODE, session_ttl_s=60.0), clock=clock,
                        end_sequence=ended.append)
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
