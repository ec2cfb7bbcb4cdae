"""Admission, backpressure, segment ids and stream failure in `pipeline`, through a fake
stage set (no Triton, no models): fast."""

import itertools
import math
import threading
import time

import numpy as np
import pytest
from scripted import Collect, FailingStore

from livetranslate import protocol as P
from livetranslate.keys import Keys
from livetranslate.pipeline import Admission, Limits, Pipeline, PipelineOptions, ServerFull
from livetranslate.pipeline.stages import PlainUrgentTranslation
from livetranslate.protocol import EventKind, ProtocolError, SessionOptions
from livetranslate.stages.vad import Boundaries, Utterance
from livetranslate.stages.whisper import Transcription
from livetranslate.store import Hub, SessionStore

RATE = P.SAMPLE_RATE_HZ


class FakeStages(PlainUrgentTranslation):
    """Every chunk is one closed utterance that Whisper hears as a new word; `gate` holds vad."""

    WORDS = "hallo welt guten morgen liebe leute heute reden wir über das wetter".split()

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate
        self._clock: dict[int, int] = {}
        self._calls = itertools.count()

    def vad(self, stream_id, audio, start, end):
        if self.gate is not None:
            assert self.gate.wait(30)
        begin = 0 if start else self._clock.get(stream_id, 0)
        self._clock[stream_id] = begin + len(audio)
        if len(audio) == 0:
            return Boundaries()
        return Boundaries((Utterance(begin, begin + len(audio), begin + len(audio)),))

    def whisper(self, request, partial=False):
        return Transcription(self.WORDS[next(self._calls) % len(self.WORDS)].capitalize() + ".", "de", 0.0, -0.1)

    def translate(self, text, source, target, context="", glossary=None):
        return "hello"

    def enhance(self, stream_id, step, source, target, start, end, check_complete=True, flush=True, glossary=None):
        return []


def pipeline(limits=Limits(), stages=None, store=None):
    return Pipeline(stages or FakeStages(), PipelineOptions(limits=limits), store=store)


def start(p, stream_id, session, events, seconds=0.5, translate=False):
    tensors = {
        P.AUDIO: np.ones(int(seconds * RATE), np.int16) * 100,
        **SessionOptions(session, translate=translate, partials=False).to_tensors(),
    }
    reply = Collect(events)
    p.handle(stream_id, True, False, tensors.get, reply)
    return reply


def chunk(p, stream_id, events, seconds=0.5, end=False):
    reply = Collect(events)
    p.handle(stream_id, False, end, {P.AUDIO: np.ones(int(seconds * RATE), np.int16) * 100}.get, reply)
    return reply


def test_the_next_speaker_past_the_limit_is_told_the_server_is_full_at_once():
    p = pipeline(Limits(max_streams=2))
    first, second, third = [], [], []
    start(p, 1, "a", first)
    start(p, 2, "b", second)
    began = time.monotonic()
    reply = start(p, 3, "c", third)
    assert reply.closed.wait(1) and time.monotonic() - began < 1
    assert third[-1].kind == EventKind.END and "server full" in third[-1].error
    # the streams already running are untouched
    for stream_id, events in ((1, first), (2, second)):
        assert chunk(p, stream_id, events, end=True).closed.wait(10)
        assert events[-1].kind == EventKind.END and not events[-1].error
        assert len([e.text for e in events if e.kind == EventKind.TRANSCRIPT]) == 2
    # and a place freed is a place taken
    assert start(p, 4, "d", []).closed.wait(10)
    assert p.admission.counts()[0] == 1


def test_one_session_takes_a_bounded_number_of_streams_with_distinct_segment_ids():
    p = pipeline(Limits(max_streams_per_session=2))
    a, b, c = [], [], []
    start(p, 1, "shared", a)
    start(p, 2, "shared", b)
    start(p, 3, "shared", c)
    assert "already has 2" in c[-1].error
    for _ in range(3):
        chunk(p, 1, a)
        chunk(p, 2, b)
    assert chunk(p, 1, a, end=True).closed.wait(10) and chunk(p, 2, b, end=True).closed.wait(10)
    ids = [e.segment_id for e in a + b if e.kind == EventKind.TRANSCRIPT]
    assert len(ids) == 10 and len(set(ids)) == 10


def test_a_client_that_ignores_its_replies_is_refused_with_a_clear_error_and_the_stream_goes_on():
    gate = threading.Event()
    p = pipeline(Limits(max_queued_s=2.0), FakeStages(gate))
    events = []
    start(p, 1, "fast", events, seconds=1.0)
    refused = []
    for _ in range(4):
        chunk(p, 1, refused, seconds=0.6)
    assert any(e.kind == EventKind.ERROR and "too much audio waiting" in e.text for e in refused)
    gate.set()
    assert chunk(p, 1, events, end=True).closed.wait(10)
    assert events[-1].kind == EventKind.END


def test_viewer_limits_and_bookkeeping_freed(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    p = pipeline(Limits(max_viewers=2, max_viewers_per_session=1), store=store)
    speaker = []
    start(p, 1, "talk", speaker)
    views = [[], [], []]

    replies = []
    for i, name in enumerate(["talk", "talk", "other"]):
        replies.append(Collect(views[i]))
        p.handle(100 + i, True, True, {P.SUBSCRIBE: np.array([name.encode()], dtype=np.object_)}.get, replies[-1])
    assert replies[1].closed.wait(1) and "already has 1 viewer" in views[1][-1].error
    assert replies[2].closed.wait(5) and "no session named" in views[2][-1].error
    replies[0].cancelled = True
    assert replies[0].closed.wait(5)
    deadline = time.monotonic() + 5
    while p.admission.counts()[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.admission.counts()[1] == 0 and store.hub.count("talk") == 0
    assert store.hub._viewers == {}  # no entry left behind by any name
    for bad in ["", "x" * 201, "bad\nname"]:
        events = []
        p.handle(200, True, True, {P.SUBSCRIBE: np.array([bad.encode()], dtype=np.object_)}.get, Collect(events))
        assert events[0].kind == EventKind.ERROR and "SUBSCRIBE must name a session" in events[0].text


def test_a_start_on_a_live_sequence_id_ends_the_old_session(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    p = pipeline(store=store)
    old, new = [], []
    start(p, 7, "first", old)
    time.sleep(0.3)
    start(p, 7, "second", new)
    deadline = time.monotonic() + 5
    while store.info("first").state != "ended" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.info("first").state == "ended"
    stored = store.events("first")
    assert stored[-1].kind == EventKind.END and "same sequence id" in stored[-1].error
    assert chunk(p, 7, new, end=True).closed.wait(10) and new[-1].kind == EventKind.END


def test_a_store_failure_ends_the_stream_with_an_error_and_frees_its_threads(tmp_path):
    store = FailingStore(tmp_path, ok=1)
    p = pipeline(store=store)
    events = []
    start(p, 9, "full", events)
    deadline = time.monotonic() + 5
    while not any(e.kind == EventKind.END for e in events) and time.monotonic() < deadline:
        chunk(p, 9, events)
        time.sleep(0.05)
    end = [e for e in events if e.kind == EventKind.END]
    assert end and "could not be stored" in end[0].error and "No space left" in end[0].error
    deadline = time.monotonic() + 5
    while any(t.name.endswith("-9") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.endswith("-9")]
    assert p.admission.counts()[0] == 0
    later = []
    chunk(p, 9, later)
    assert later[0].kind == EventKind.ERROR
    # the server goes on: another session works
    store.ok = 100
    other = []
    start(p, 10, "fine", other)
    assert chunk(p, 10, other, end=True).closed.wait(10) and not other[-1].error


@pytest.mark.parametrize(
    "field, value",
    [
        ("time_base_s", math.nan),
        ("time_base_s", math.inf),
        ("time_base_s", -1.0),
        ("time_base_s", 1e12),
        ("segment_base", -1),
        ("segment_base", 2**40),
    ],
)
def test_out_of_range_session_bases_are_refused(field, value):
    with pytest.raises(ProtocolError, match=field.upper()):
        SessionOptions("s", **{field: value})


def test_admission_counts():
    admission = Admission(Limits(max_streams=1, max_viewers=1))
    admission.admit_stream("a")
    with pytest.raises(ServerFull, match="server full"):
        admission.admit_stream("b")
    admission.stream_left("a")
    admission.admit_stream("b")
    assert admission.counts() == (1, 0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def quiet_pipeline(clock, limits=Limits(), store=None, **options):
    return Pipeline(FakeStages(), PipelineOptions(limits=limits, **options), store=store, clock=clock)


def wait_for(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_stream_without_audio_is_closed_its_place_freed_its_session_kept_and_its_client_told(tmp_path):
    clock, store = Clock(), SessionStore(tmp_path, hub=Hub())
    p = quiet_pipeline(clock, store=store)
    events = []
    start(p, 1, "lunch", events)
    clock.now += 59
    assert p.close_silent() == 0
    for _ in range(5):  # a few samples each: 50 ms in all does not count as audio
        chunk(p, 1, events, seconds=0.01)
    assert wait_for(lambda: len([e for e in events if e.kind == EventKind.TRANSCRIPT]) == 6)
    clock.now += 2
    assert p.close_silent() == 1 and p.admission.counts()[0] == 0
    told = []
    chunk(p, 1, told)
    chunk(p, 1, told)  # every later request hears the same
    assert [e.text for e in told] == ["no audio for 60 s: the stream was closed; reconnect to go on"] * 2
    assert all(e.kind == EventKind.ERROR for e in told)
    assert wait_for(lambda: store.info("lunch").state == "ended")
    stored = store.events("lunch")
    transcripts = [e for e in stored if e.kind == EventKind.TRANSCRIPT]
    assert transcripts and stored[-1].kind == EventKind.END and "no audio for 60 s" in stored[-1].error
    # a reconnect goes on with the session
    again = []
    start(p, 2, "lunch", again)
    assert chunk(p, 2, again, end=True).closed.wait(10) and again[-1].kind == EventKind.END
    later = [e.segment_id for e in again if e.kind == EventKind.TRANSCRIPT]
    assert later and min(later) > max(e.segment_id for e in transcripts)


def test_a_stream_that_sends_silence_is_never_closed_for_it():
    clock = Clock()
    p = quiet_pipeline(clock)
    events = []
    start(p, 1, "paused-meeting", events)
    for _ in range(30):  # 300 s of a meeting on pause: 0.1 s of silence every 10 s, a capture's tick
        clock.now += 10
        p.handle(1, False, False, {P.AUDIO: np.zeros(int(0.1 * RATE), np.int16)}.get, Collect(events))
        assert p.close_silent() == 0
    assert not [e for e in events if e.kind == EventKind.ERROR]
    assert chunk(p, 1, events, end=True).closed.wait(10) and not events[-1].error


def heard(events, n=1):
    """Waits until the stream's audio so far is processed (a quiet stream's audio is)."""
    assert wait_for(lambda: len([e for e in events if e.kind == EventKind.TRANSCRIPT]) >= n)


def test_a_new_speaker_takes_the_place_of_the_stream_quiet_for_longest_past_the_yield_time():
    clock = Clock()
    p = quiet_pipeline(clock, Limits(max_streams=2))
    first, second, third, fourth = [], [], [], []
    start(p, 1, "a", first)
    clock.now += 5
    start(p, 2, "b", second)
    heard(first)
    heard(second)
    clock.now += 10  # quiet for 15 s and 10 s: not yet
    assert start(p, 3, "c", third).closed.wait(1) and "server full" in third[-1].error
    clock.now += 1
    reply = start(p, 4, "d", fourth)
    assert not reply.closed.is_set() and p.admission.counts()[0] == 2
    told, kept = [], []
    chunk(p, 1, told)
    chunk(p, 2, kept)
    assert told[0].kind == EventKind.ERROR and told[0].text == (
        "no audio for 16 s: the stream was closed to make room for another speaker; reconnect to go on"
    )
    assert not [e for e in kept if e.kind == EventKind.ERROR]
    for stream_id, events in ((2, kept), (4, fourth)):
        assert chunk(p, stream_id, events, end=True).closed.wait(10) and not events[-1].error


def test_a_full_session_gives_the_place_of_its_own_quiet_stream_only():
    clock = Clock()
    p = quiet_pipeline(clock, Limits(max_streams_per_session=1))
    other, old, new = [], [], []
    start(p, 1, "elsewhere", other)
    start(p, 2, "talk", old)
    heard(old)
    clock.now += 30
    chunk(p, 1, other)  # not quiet, and not of this session anyway
    reply = start(p, 3, "talk", new)  # the client reconnected: its old stream went quiet
    assert not reply.closed.is_set()
    told = []
    chunk(p, 2, told)
    assert "to make room" in told[0].text
    assert chunk(p, 1, other, end=True).closed.wait(10) and not other[-1].error


def test_quiet_streams_are_kept_when_the_settings_say_never():
    clock = Clock()
    p = quiet_pipeline(clock, Limits(max_streams=1), no_audio_s=0, no_audio_yield_s=0)
    kept, refused = [], []
    start(p, 1, "a", kept)
    heard(kept)
    clock.now += 100
    assert p.close_silent() == 0
    assert start(p, 2, "b", refused).closed.wait(1) and "server full" in refused[-1].error
    assert chunk(p, 1, kept, end=True).closed.wait(10) and not kept[-1].error


def test_a_refused_start_has_its_sequence_ended_at_once():
    ended = []
    p = Pipeline(FakeStages(), PipelineOptions(limits=Limits(max_streams=1)), end_sequence=ended.append)
    start(p, 1, "a", [])
    for stream_id in (2, 3):
        start(p, stream_id, f"s{stream_id}", [])
    assert wait_for(lambda: sorted(ended) == [2, 3])


KEYS = Keys.parse("""
alice  alice-key-0123456789abcdef  streams=1 viewers=1
bob    bob-key-0123456789abcdef00
mute   mute-key-0123456789abcdef0  streams=0
""")


def keyed(p, stream_id, session, events, key, start_it=True, end=False, seconds=0.5):
    tensors = {P.AUDIO: np.ones(int(seconds * RATE), np.int16) * 100}
    if start_it:
        tensors.update(SessionOptions(session, translate=False, partials=False).to_tensors())
    reply = Collect(events)
    p.handle(stream_id, start_it, end, tensors.get, reply, key=lambda: key)
    return reply


def test_each_named_client_keeps_within_its_own_limits_and_says_which_was_hit():
    clock = Clock()
    p = Pipeline(FakeStages(), PipelineOptions(limits=Limits(max_streams=8)), clock=clock, keys=KEYS)
    a1, a2, b1, b2, m = [], [], [], [], []
    keyed(p, 1, "a1", a1, "alice-key-0123456789abcdef")
    assert keyed(p, 2, "a2", a2, "alice-key-0123456789abcdef").closed.wait(1)
    assert (
        a2[-1].kind == EventKind.END
        and a2[-1].text == ""
        and a2[-1].error
        == (
            "client 'alice' already has 1 speaker stream(s) live, the most its key allows; "
            "try again when one of them has ended"
        )
    )
    keyed(p, 3, "b1", b1, "bob-key-0123456789abcdef00")
    keyed(p, 4, "b2", b2, "bob-key-0123456789abcdef00")  # bob's default: 2
    assert not [e for e in b1 + b2 if e.error]
    assert keyed(p, 5, "m", m, "mute-key-0123456789abcdef0").closed.wait(1)
    assert "client 'mute' may not open speaker streams: its key allows none" == m[-1].error
    assert p.admission.quota.count("stream", "alice") == 1 and p.admission.quota.count("stream", "bob") == 2
    # alice's stream, gone quiet, gives way to alice's next one; bob's are not touched
    heard(a1)
    clock.now += 20
    a3 = []
    assert not keyed(p, 6, "a3", a3, "alice-key-0123456789abcdef").closed.is_set()
    told = []
    keyed(p, 1, "", told, "alice-key-0123456789abcdef", start_it=False)
    assert "to make room for another speaker" in told[0].text
    assert p.admission.quota.count("stream", "alice") == 1
    for stream_id, events, key in ((3, b1, "bob-key-0123456789abcdef00"), (6, a3, "alice-key-0123456789abcdef")):
        assert keyed(p, stream_id, "", events, key, start_it=False, end=True).closed.wait(10)
        assert events[-1].kind == EventKind.END and not events[-1].error
    assert wait_for(lambda: p.admission.quota.count("stream", "alice") == 0)


def test_without_a_known_key_nothing_opens_and_a_stream_answers_only_its_own_client():
    ended = []
    p = Pipeline(FakeStages(), PipelineOptions(), keys=KEYS, end_sequence=ended.append)
    for stream_id, key in ((1, ""), (11, "not-a-key-at-all-0000000")):
        events = []
        assert keyed(p, stream_id, "x", events, key).closed.wait(1)
        assert events[-1].kind == EventKind.END and "needs a client key" in events[-1].error
        later = []  # a chunk on it
        keyed(p, stream_id, "", later, key, start_it=False)
        assert later[0].kind == EventKind.ERROR and "needs a client key" in later[0].text
    assert p.admission.counts() == (0, 0) and wait_for(lambda: sorted(ended) == [1, 11])  # Triton holds nothing
    mine, theirs = [], []
    keyed(p, 2, "mine", mine, "alice-key-0123456789abcdef")
    keyed(p, 2, "", theirs, "bob-key-0123456789abcdef00", start_it=False)
    assert theirs[0].text == "this stream was opened with another client key"
    # the server's own requests (a drain's ends) carry its token, not a client key
    own = []
    p.handle(2, False, True, {P.AUDIO: np.zeros(0, np.int16)}.get, Collect(own), internal=lambda: True)
    assert not [e for e in own if e.kind == EventKind.ERROR]


def test_a_client_viewer_quota(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    p = Pipeline(FakeStages(), PipelineOptions(), store=store, keys=KEYS)
    keyed(p, 1, "talk", [], "bob-key-0123456789abcdef00")
    views = [[], []]
    replies = []
    for i in range(2):
        replies.append(Collect(views[i]))
        p.handle(
            100 + i,
            True,
            True,
            {P.SUBSCRIBE: np.array([b"talk"], dtype=np.object_)}.get,
            replies[-1],
            key=lambda: "alice-key-0123456789abcdef",
        )
    assert replies[1].closed.wait(1) and "client 'alice' already has 1 viewer(s) live" in views[1][-1].error
    replies[0].cancelled = True
    assert replies[0].closed.wait(5)
    assert wait_for(lambda: p.admission.quota.count("viewer", "alice") == 0)


def test_a_stream_the_server_still_works_on_is_not_closed_for_want_of_audio():
    """A client that sent its audio (a file, faster than real time) waits for the server: its
    stream is never quiet while audio of it waits, nor after its last chunk."""
    clock, gate = Clock(), threading.Event()
    p = Pipeline(FakeStages(gate), PipelineOptions(), clock=clock)
    events = []
    start(p, 1, "upload", events)
    chunk(p, 1, events, seconds=1.0)
    last = chunk(p, 1, events, end=True)
    clock.now += 600
    assert p.close_silent() == 0
    gate.set()
    assert last.closed.wait(10) and events[-1].kind == EventKind.END and not events[-1].error
