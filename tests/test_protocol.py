import numpy as np
import pytest

from livetranslate import protocol as P
from livetranslate.protocol import Event, EventKind, ProtocolError, SessionOptions, validate_audio_chunk


def test_event_round_trips_through_tensors():
    event = Event(EventKind.TRANSCRIPT, "Grüß Gott, wie geht's?", 3, 1.25, 2.5, "de", 812.5)
    tensors = event.to_tensors()
    assert set(tensors) == {
        P.KIND,
        P.TEXT,
        P.SEGMENT_ID,
        P.START_S,
        P.END_S,
        P.LANGUAGE,
        P.LATENCY_MS,
        P.FIRST_SEGMENT_ID,
        P.ERROR,
        P.NOTE,
        P.WORDS,
        P.SPEAKER,
    }
    assert Event.from_tensors(tensors.get) == event
    failed = Event(EventKind.TRANSLATION, "", 4, error="the LLM returned no translation")
    assert Event.from_tensors(failed.to_tensors().get) == failed
    enhanced = Event(EventKind.ENHANCED, "Hello.", 7, first_segment_id=5)
    assert Event.from_tensors(enhanced.to_tensors().get).first_segment_id == 5


def test_event_json_has_the_documented_keys():
    d = Event(EventKind.END, end_s=3.0).to_dict()
    assert d["kind"] == "end"
    assert {"kind", "text", "segment_id", "start_s", "end_s", "latency_ms", "language"} <= set(d)


def test_session_options_from_tensors_and_defaults():
    opts = SessionOptions("talk", 44100, "auto", "en")
    back = SessionOptions.from_tensors(opts.to_tensors().get, default_session="x")
    assert back == opts and back.whisper_language == ""
    default = SessionOptions.from_tensors(lambda name: None, default_session="stream-1")
    assert default == SessionOptions("stream-1", 16000, "de", "en", translate=True)
    quiet = SessionOptions("q", translate=False)
    assert SessionOptions.from_tensors(quiet.to_tensors().get, "x").translate is False
    assert default.whisper_language == "de"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sample_rate=100), "SAMPLE_RATE 100 Hz is out of range"),
        (dict(sample_rate=10_000_000), "out of range"),
        (dict(source_language="klingon"), r"spoken language \(SOURCE_LANGUAGE\): unknown language 'klingon'"),
        (dict(target_language="xx"), r"translation language \(TARGET_LANGUAGE\): unknown language 'xx'"),
        (dict(session=""), "SESSION must be"),
    ],
)
def test_session_options_reject_bad_values(kwargs, message):
    with pytest.raises(ProtocolError, match=message):
        SessionOptions(**{"session": "s", **kwargs})


def test_validate_audio_chunk():
    ok = np.zeros(160, np.int16)
    assert validate_audio_chunk(ok, 16000, last=False) is ok
    with pytest.raises(ProtocolError, match="INT16"):
        validate_audio_chunk(ok.astype(np.float32), 16000, last=False)
    with pytest.raises(ProtocolError, match="1-D"):
        validate_audio_chunk(ok.reshape(2, 80), 16000, last=False)
    with pytest.raises(ProtocolError, match="empty"):
        validate_audio_chunk(np.zeros(0, np.int16), 16000, last=False)
    assert validate_audio_chunk(np.zeros(0, np.int16), 16000, last=True).size == 0
    with pytest.raises(ProtocolError, match="longer than"):
        validate_audio_chunk(np.zeros(16000 * 31, np.int16), 16000, last=False)
