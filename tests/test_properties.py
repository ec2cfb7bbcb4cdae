"""Properties over arbitrary input (hypothesis): what the store keeps it gives back whole, every
session name gets a file of its own, subtitle exports read back as written, and session options
either validate or fail with a ProtocolError."""

import dataclasses
import html
import io
import math
import os
import re
import tempfile

import numpy as np
import pytest
import srt
import webvtt
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from livetranslate import protocol as P
from livetranslate.present.cues import cues_for
from livetranslate.present.subtitles import WORD_JOINER, cue_text, render
from livetranslate.protocol import Event, EventKind, ProtocolError, SessionOptions
from livetranslate.store import SessionStore, safe_name

# no example database: nothing written into the working tree (failures print their example)
FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Line breaks of every kind turn up often, not once in a million characters.
BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
any_char = st.characters(exclude_categories=())  # surrogates too
text = st.text(st.one_of(any_char, st.sampled_from(BREAKS + "-><&0123456789 .,:")), max_size=60)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)
events = st.builds(
    Event,
    kind=st.sampled_from([k for k in EventKind if k != EventKind.PARTIAL]),
    text=text,
    segment_id=st.integers(-1, 2**40),
    start_s=seconds,
    end_s=seconds,
    language=text,
    latency_ms=st.floats(allow_nan=False, allow_infinity=False),
    first_segment_id=st.integers(-1, 2**40),
    error=text,
)
# what str.isprintable() accepts: no control, format, private, unassigned or separator
# characters but the space
printable = st.one_of(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")), st.just(" "))
session_names = st.text(printable, min_size=1, max_size=200)


@FAST
@given(name=session_names, stored=st.lists(events, max_size=8))
def test_the_store_gives_back_every_event_whole(name, stored):
    with tempfile.TemporaryDirectory() as data_dir:
        store = SessionStore(data_dir, fsync=False)
        store.open(name, "de", "en")
        for event in stored:
            store.append(name, event)
        store.close(name)
        again = SessionStore(data_dir)  # another process reading the files
        assert again.events(name) == stored
        assert [info.name for info in again.sessions()] == [name]
        os.unlink(os.path.join(data_dir, safe_name(name) + ".meta.json"))
        rebuilt = SessionStore(data_dir).info(name)  # metadata from the log alone
        assert rebuilt.name == name and sum(rebuilt.counts.values()) == len(stored)


@FAST
@given(name=session_names)
def test_a_session_name_gives_a_plain_file_name(name):
    file = safe_name(name)
    assert file and len((file + ".meta.json").encode()) <= 255
    assert "/" not in file and "\0" not in file and not file.startswith(".")
    assert file.isascii() and file.isprintable()


@FAST
@given(a=session_names, b=session_names)
def test_distinct_session_names_give_distinct_files(a, b):
    assume(a != b)
    assert safe_name(a) != safe_name(b)


@FAST
@given(name=session_names)
def test_a_session_named_like_anothers_file_gets_a_file_of_its_own(name):
    assume(safe_name(name) != name)
    assert safe_name(safe_name(name)) != safe_name(name)


ARROW = re.compile("--+>")


def read_srt(body):
    return [(s.start, s.end, s.content) for s in srt.parse(body)]


def read_vtt(body):
    return [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), c.text)
        for c in webvtt.from_buffer(io.StringIO(body), strict=True)
    ]


def ms(s: float) -> int:
    return int(round(s * 1e6)) // 1000  # the exporter's timestamps: microseconds, truncated to ms


@FAST
@given(cues=st.lists(st.tuples(text, seconds, st.floats(0, 100)), min_size=1, max_size=5))
def test_subtitles_read_back_as_written(cues):
    """Each event becomes the cues the cue maker makes of it (livetranslate.present.cues), in
    order; both parsers read every cue back as the maker wrote it, escaped as its format needs."""
    stored = [
        Event(EventKind.TRANSLATION, t or "x", i, start, start + length) for i, (t, start, length) in enumerate(cues)
    ]
    made = [c for e in stored for c in cues_for(e.text, e.start_s, e.end_s)]
    subs = read_srt(render(stored, "srt", (EventKind.TRANSLATION,)))
    caps = read_vtt(render(stored, "vtt", (EventKind.TRANSLATION,)))
    assert len(subs) == len(caps) == len(made) >= len(stored)
    for c, sub, cap in zip(made, subs, caps):
        assert cap[2] == cue_text(c.text, "vtt") and html.unescape(cap[2]) == c.text
        assert sub[2] == cue_text(c.text, "srt")
        assert sub[2].replace(WORD_JOINER, "") == "\n".join(ARROW.sub("->", line) for line in c.lines)
        start, end = ms(c.start_s), ms(c.end_s)
        assert sub[0].total_seconds() * 1000 == pytest.approx(start, abs=1) and cap[0] == pytest.approx(start, abs=1)
        assert sub[1].total_seconds() * 1000 == pytest.approx(end, abs=1) and cap[1] == pytest.approx(end, abs=1)


# long, short, empty and unicode-heavy text: words of every script, combining marks, emoji,
# words longer than a line, punctuation, line breaks of every kind
cue_words = st.one_of(
    st.text(st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=12),
    st.text(st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=40, max_size=100),
    st.sampled_from(["und", "aber", "the", "für", "Prozent,", "gestiegen.", "Ja.", "—", "漢字テキスト", "👩‍👩‍👧"]),
)
cue_texts = st.one_of(
    text,
    st.lists(st.tuples(cue_words, st.sampled_from([" ", " ", " ", "\n", "\u2028", "  \t"])), max_size=80).map(
        lambda pairs: "".join(w + s for w, s in pairs)
    ),
)


@FAST
@given(said=cue_texts, start=st.floats(0, 36000), length=st.floats(0, 120))
def test_every_cue_keeps_the_broadcast_rules(said, start, length):
    from livetranslate.present.cues import MAX_CPS, MAX_LINE, MAX_S, MIN_S, READ_CPS, cues_for, words_of

    made = cues_for(said, start, start + length)
    assert made
    words, _ = words_of(said)
    # every word whole and in order (one longer than a line is cut, as no line holds it)
    assert [w for c in made for line in c.lines for w in line.split(" ")] == (words or ["…"])
    previous_end = start
    for c in made:
        assert 1 <= len(c.lines) <= 2 and all(0 < len(line) <= MAX_LINE for line in c.lines)
        assert all(line == line.strip() for line in c.lines)
        duration = c.end_s - c.start_s
        assert MIN_S - 1e-9 <= duration <= MAX_S + 1e-9
        assert c.characters / duration <= MAX_CPS + 1e-6
        assert c.start_s >= previous_end - 1e-9  # in order, never on top of each other
        previous_end = c.end_s
    assert made[0].start_s == start
    chars = sum(c.characters for c in made)
    if length >= chars / READ_CPS + MIN_S * len(made):  # the speech leaves time to read comfortably
        assert all(c.characters / (c.end_s - c.start_s) <= READ_CPS + 1e-6 for c in made)


valid_options = st.builds(
    SessionOptions,
    session=session_names.filter(lambda name: name == name.strip()),
    sample_rate=st.integers(P.MIN_SAMPLE_RATE_HZ, P.MAX_SAMPLE_RATE_HZ),
    source_language=st.sampled_from(sorted(P.WHISPER_LANGUAGES) + [P.AUTO_LANGUAGE]),
    target_language=st.sampled_from(sorted(P.WHISPER_LANGUAGES)),
    translate=st.booleans(),
    partials=st.booleans(),
    segment_base=st.integers(0, 10**6),
    time_base_s=st.floats(0, 10**6),
)


@FAST
@given(options=valid_options)
def test_valid_options_travel_as_tensors(options):
    back = SessionOptions.from_tensors(options.to_tensors().get, "default")
    assert back == dataclasses.replace(options, time_base_s=float(np.float32(options.time_base_s)))


@FAST
@given(
    session=st.one_of(st.none(), st.just(b"Team / Standup"), st.binary(max_size=300)),
    rate=st.one_of(
        st.none(), st.integers(P.MIN_SAMPLE_RATE_HZ, P.MAX_SAMPLE_RATE_HZ), st.integers(-(2**31), 2**31 - 1)
    ),
    source=st.one_of(st.none(), st.sampled_from([b"de", b"AUTO", b" en "]), st.binary(max_size=8)),
    target=st.one_of(st.none(), st.sampled_from([b"en", b"De"]), st.binary(max_size=8)),
    base=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    time_base=st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -1.0, 3e38]), st.floats(width=32)),
)
def test_any_first_request_validates_or_is_a_protocol_error(session, rate, source, target, base, time_base):
    sent = {
        P.SESSION: session and np.array([session], dtype=np.object_),
        P.SAMPLE_RATE: rate is not None and np.array([rate], dtype=np.int32),
        P.SOURCE_LANGUAGE: source and np.array([source], dtype=np.object_),
        P.TARGET_LANGUAGE: target and np.array([target], dtype=np.object_),
        P.SEGMENT_BASE: base is not None and np.array([base], dtype=np.int64),
        P.TIME_BASE_S: time_base is not None and np.array([time_base], dtype=np.float32),
    }
    sent = {k: v for k, v in sent.items() if isinstance(v, np.ndarray)}
    try:
        options = SessionOptions.from_tensors(sent.get, "stream-1")
    except ProtocolError:
        return
    assert math.isfinite(options.time_base_s) and options.time_base_s >= 0 and options.segment_base >= 0
    assert options.session.isprintable() and 1 <= len(options.session) <= 200


@FAST
@given(time_base=st.sampled_from([math.nan, math.inf, -math.inf, -1e-3, 1e300]))
def test_a_time_base_that_is_no_clock_is_refused(time_base):
    with pytest.raises(ProtocolError, match="TIME_BASE_S"):
        SessionOptions("s", time_base_s=time_base)


@FAST
@given(segment_base=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**53)))
def test_a_segment_base_out_of_range_is_refused(segment_base):
    with pytest.raises(ProtocolError, match="SEGMENT_BASE"):
        SessionOptions("s", segment_base=segment_base)


@FAST
@given(
    session=st.one_of(
        st.just(""),
        st.text(min_size=201, max_size=300),
        st.text(min_size=1, max_size=50).filter(lambda s: not s.isprintable()),
    )
)
def test_a_bad_session_name_is_refused(session):
    with pytest.raises(ProtocolError, match="SESSION"):
        SessionOptions(session)
