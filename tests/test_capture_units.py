import threading
import time

import numpy as np
import srt
import webvtt

from livetranslate.client import AudioBuffer, level_dbfs
from livetranslate.present.subtitles import SubtitleWriter, render
from livetranslate.protocol import Event, EventKind


def test_live_buffer_drops_oldest_and_counts_it():
    buf = AudioBuffer(rate=100, live=True, max_s=1.0)
    for i in range(15):
        buf.put(np.full(10, i, np.int16))
    assert abs(buf.dropped_s - 0.5) < 1e-9 and abs(buf.buffered_s - 1.0) < 1e-9
    assert buf.get(0.01)[0] == 5  # the oldest kept chunk
    buf.finish()
    while buf.get(0.01) is not None:
        pass
    assert buf.get(0.01) is None and buf.finished


def test_file_buffer_waits_instead_of_dropping():
    buf = AudioBuffer(rate=100, live=False, max_s=0.2)
    done = threading.Event()

    def produce():
        for i in range(10):
            buf.put(np.full(10, i, np.int16))
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    time.sleep(0.1)
    assert not done.is_set()  # blocked at the bound
    got = [buf.get(1.0)[0] for _ in range(10)]
    assert got == list(range(10)) and buf.dropped_s == 0


def test_level():
    assert level_dbfs(np.zeros(100, np.int16)) < -100
    assert -7 < level_dbfs(np.full(100, 16384, np.int16)) < -5


EVENTS = [
    Event(EventKind.TRANSCRIPT, "Guten Morgen.", 0, 0.5, 2.0),
    Event(EventKind.TRANSLATION, "Good morning.", 0, 0.5, 2.0, "en"),
    Event(EventKind.TRANSLATION, "", 1, 2.5, 4.0, "en", error="translation failed"),
    Event(EventKind.TRANSCRIPT, "Zeile --> mit Pfeil", 1, 2.5, 4.0),
    Event(EventKind.TRANSLATION, "A line with an arrow.", 2, 61.25, 3725.5, "en"),
]


def test_srt_and_vtt_parse_and_match_at_every_moment(tmp_path):
    kinds = (EventKind.TRANSLATION,)
    srt_w = SubtitleWriter(tmp_path / "a.srt", "srt", kinds)
    vtt_w = SubtitleWriter(tmp_path / "a.vtt", "vtt", kinds)
    for n, event in enumerate(EVENTS):
        srt_w.add(event)
        vtt_w.add(event)
        parsed = list(srt.parse((tmp_path / "a.srt").read_text()))  # valid after every event
        captions = webvtt.read(str(tmp_path / "a.vtt"))
        assert len(parsed) == len(captions.captions) == sum(e.kind in kinds and not e.error for e in EVENTS[: n + 1])
    assert [s.content for s in parsed] == ["Good morning.", "A line with an arrow."]
    # a cue stays on screen 7 s at the most, however long its event was
    assert parsed[1].start.total_seconds() == 61.25 and parsed[1].end.total_seconds() == 68.25
    assert captions.captions[1].start == "00:01:01.250" and captions.captions[1].end == "00:01:08.250"
    whole = render(EVENTS, "srt", (EventKind.TRANSCRIPT,))
    assert [s.content for s in srt.parse(whole)] == ["Guten Morgen.", "Zeile -> mit Pfeil"]


def test_a_quiet_meeting_is_not_a_lost_connection():
    """While audio is still going out, no events for longer than the idle limit is fine (a
    pause in the meeting); once everything is sent, the limit applies to the final flush."""
    import queue

    import pytest

    from livetranslate.client.connection import ClientError
    from livetranslate.client.pipeline import _read_events

    events: queue.Queue = queue.Queue()
    sending = threading.Event()
    sending.set()
    got = []

    def read():
        try:
            got.extend(_read_events(events, 0.05, (EventKind.END,), waiting=lambda: not sending.is_set()))
        except ClientError as exc:
            got.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)  # six idle limits of silence while sending
    events.put(Event(EventKind.TRANSCRIPT, "Hallo."))
    time.sleep(0.2)
    assert reader.is_alive() and [e.text for e in got] == ["Hallo."]
    sending.clear()  # all sent: now the server must answer within the limit
    reader.join(2)
    assert not reader.is_alive() and isinstance(got[-1], ClientError) and "no answer" in str(got[-1])
    with pytest.raises(ClientError):
        list(_read_events(queue.Queue(), 0.01, (EventKind.END,)))


def test_a_cancelled_stream_leaves_no_thread_behind():
    """tritonclient leaves gRPC's request thread of a cancelled stream waiting forever; the
    client's stop_stream ends it (a dashboard cancels a stream per viewer that leaves)."""
    import time

    import tritonclient.grpc as grpcclient

    from livetranslate.client.connection import stop_stream

    client = grpcclient.InferenceServerClient("127.0.0.1:1")  # nothing listens: no server needed
    before = threading.active_count()
    for _ in range(20):
        client.start_stream(callback=lambda **_: None)
        stop_stream(client, cancel=True)
    time.sleep(0.5)
    client.close()
    assert threading.active_count() - before < 3
