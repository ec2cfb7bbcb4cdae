"""SubRip and WebVTT exports read back by real parsers (srt, webvtt-py): same cues, same text,
same timings, whatever the text holds."""

import html
import io

import pytest
import srt
import webvtt

from livetranslate.present.export import export
from livetranslate.present.subtitles import WORD_JOINER, SubtitleWriter, cue, header, render
from livetranslate.protocol import Event, EventKind

TRICKY = [
    "Pfeil --> hier",  # would start a cue
    "a <b>fett</b> & 1 < 2 > 0",  # tags and references in WebVTT
    "erste Zeile\n\n\nnach Leerzeilen",  # blank lines would end the cue
    "Zeile\r\nWindows\rMac",
    "Unicode\u2028Zeilen\u2029trenner\x85NEL\x0bVT\x0cFF\x1cFS\x1dGS\x1eRS",
    "   \n\t\n",  # only blanks
    "NOTE das ist keine Notiz",
    "WEBVTT",
]
# A line that is only a number, then lines that look like a cue's timings: a parser that
# takes the number for an index starts a second cue here.
INJECTION = "Hallo\n2\n00:00:05,000 - > 00:00:06,000\nuntergeschoben\n3\n00:00:07.000 --> 00:00:08.000\nnoch eine"


def visible(text: str) -> str:
    return "".join(text.replace(WORD_JOINER, "").split())


def srt_cues(text):
    return [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in srt.parse(text)]


def vtt_cues(text):
    return [
        (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, html.unescape(c.text))
        for c in webvtt.from_buffer(io.StringIO(text), strict=True)
    ]


@pytest.mark.parametrize("text", TRICKY + [INJECTION])
def test_one_cue_per_event_and_its_text_whole(text):
    events = [Event(EventKind.TRANSCRIPT, text, 0, 1.25, 2.5), Event(EventKind.TRANSCRIPT, "danach", 1, 3.0, 4.0)]
    subs = srt_cues(render(events, "srt", (EventKind.TRANSCRIPT,)))
    caps = vtt_cues(render(events, "vtt", (EventKind.TRANSCRIPT,)))
    assert [s[:2] for s in subs] == [c[:2] for c in caps] == [(1.25, 2.5), (3.0, 4.0)]
    assert subs[1][2] == caps[1][2] == "danach"
    expected = visible(text) or "…"
    assert visible(caps[0][2]) == expected  # WebVTT: every visible character back
    assert visible(subs[0][2]) == expected.replace("-->", "->")
    for content in (subs[0][2], caps[0][2]):
        assert all(line.strip() for line in content.split("\n"))


def test_the_escapes_themselves():
    assert cue(1, 0, 1, "1 < 2 & 3 > 2 --> ok", "vtt").splitlines()[1] == "1 &lt; 2 &amp; 3 &gt; 2 --&gt; ok"
    assert cue(1, 0, 1, "a ---> b\n42\n-1.5\nx", "srt").split("\n")[2:] == [
        "a -> b",
        WORD_JOINER + "42",
        WORD_JOINER + "-1.5",
        "x",
        "",
        "",
    ]
    assert cue(7, -3, float("nan"), "", "srt") == "7\n00:00:00,000 --> 00:00:00,500\n…\n\n"


def test_the_number_line_injection_breaks_the_old_cue_format():
    """The test can fail: the old escaping (only `-->` replaced) gives the parser a second cue."""
    old = "1\n00:00:01,000 --> 00:00:02,000\n" + INJECTION.replace("-->", "->") + "\n\n"
    with pytest.raises(srt.SRTParseError):
        list(srt.parse(old))
    new = cue(1, 1, 2, INJECTION, "srt")
    assert len(srt_cues(new)) == 1


def test_writer_file_is_valid_after_every_cue(tmp_path):
    for fmt, read in (("srt", srt_cues), ("vtt", vtt_cues)):
        path = tmp_path / f"live.{fmt}"
        writer = SubtitleWriter(path, fmt, (EventKind.TRANSLATION,))
        assert read(path.read_text(encoding="utf-8")) == []
        for i, text in enumerate(TRICKY + [INJECTION]):
            writer.add(Event(EventKind.TRANSLATION, text, i, i * 2.0, i * 2.0 + 1.5))
            writer.add(Event(EventKind.TRANSCRIPT, "nicht gewählt", i, i * 2.0, i * 2.0 + 1.5))
            writer.add(Event(EventKind.TRANSLATION, "", i, i * 2.0, i * 2.0 + 1.5, error="failed"))
            cues = read(path.read_text(encoding="utf-8"))  # as a player reading along would
            assert [c[0] for c in cues] == [j * 2.0 for j in range(i + 1)]
        writer.close()


def test_exports_of_both_languages_keep_one_cue_per_segment():
    events = [
        Event(EventKind.TRANSCRIPT, "1 < 2\n\n3", 0, 0.0, 1.0),
        Event(EventKind.TRANSLATION, "Pfeil --> & <i>", 0, 0.0, 1.0, language="en"),
        Event(EventKind.TRANSCRIPT, "zwei", 1, 1.0, 2.0),
    ]
    assert [c[2] for c in srt_cues(export(events, "srt", "both"))] == [f"1 < 2\n{WORD_JOINER}3\nPfeil -> & <i>", "zwei"]
    assert [c[2] for c in vtt_cues(export(events, "vtt", "both"))] == ["1 < 2\n3\nPfeil --> & <i>", "zwei"]
    assert header("vtt") == "WEBVTT\n\n" and header("srt") == ""


def _meeting_with_a_window():
    """Three sentences; the enhanced window covers the first two, in English (and one in French
    for a viewer, which must not leak into the English)."""
    return [
        Event(EventKind.TRANSCRIPT, "Wir haben zu wenig Leute.", 0, 0.0, 2.0),
        Event(EventKind.TRANSLATION, "We have too many people.", 0, 0.0, 2.0, language="en"),
        Event(EventKind.TRANSCRIPT, "Im Support.", 1, 2.5, 3.5),
        Event(EventKind.TRANSLATION, "In support.", 1, 2.5, 3.5, language="en"),
        Event(EventKind.TRANSCRIPT, "Danke.", 2, 4.0, 5.0),
        Event(EventKind.TRANSLATION, "Thanks.", 2, 4.0, 5.0, language="en"),
        Event(EventKind.ENHANCED, "Nous manquons de personnel.", 1, 0.0, 3.5, language="fr", first_segment_id=0),
        Event(EventKind.ENHANCED, "We have too few people in support.", 1, 0.0, 3.5, language="en", first_segment_id=0),
    ]


def test_exports_give_the_best_text_by_default_and_the_first_on_request():
    events = _meeting_with_a_window()
    best = srt_cues(export(events, "srt", "target", "en"))
    assert [c[2] for c in best] == ["We have too few people in support.", "Thanks."]
    assert [(c[0], c[1]) for c in best] == [(0.0, 3.5), (4.0, 5.0)]  # the window's cue spans its sentences
    first = srt_cues(export(events, "srt", "target", "en", text="first"))
    assert [c[2] for c in first] == ["We have too many people.", "In support.", "Thanks."]
    both = export(events, "txt", "both", "en")
    assert (
        both.splitlines()[0] == "[00:00.0] Wir haben zu wenig Leute. Im Support. / We have too few people in support."
    )
    assert export(events, "txt", "source", "en") == export(events, "txt", "source", "en", text="first")
    with pytest.raises(ValueError, match="best, first"):
        export(events, "txt", "target", "en", text="newest")


def test_a_failed_or_foreign_window_leaves_the_sentences_standing():
    events = _meeting_with_a_window()[:-1] + [
        Event(EventKind.ENHANCED, "", 1, 0.0, 3.5, language="en", first_segment_id=0, error="failed")
    ]
    assert [c[2] for c in srt_cues(export(events, "srt", "target", "en"))] == [
        "We have too many people.",
        "In support.",
        "Thanks.",
    ]


def test_live_best_subtitles_are_rewritten_as_a_window_comes_and_valid_throughout(tmp_path):
    from livetranslate.present.subtitles import BestSubtitleWriter

    for fmt, read in (("srt", srt_cues), ("vtt", vtt_cues)):
        path = tmp_path / f"best.{fmt}"
        writer = BestSubtitleWriter(path, fmt, "en")
        assert read(path.read_text(encoding="utf-8")) == []
        seen = []
        for event in _meeting_with_a_window():
            writer.add(event)
            seen.append([c[2] for c in read(path.read_text(encoding="utf-8"))])
        writer.close()
        assert seen[1] == ["We have too many people."]
        assert seen[5] == ["We have too many people.", "In support.", "Thanks."]
        assert seen[-1] == ["We have too few people in support.", "Thanks."]
        assert not list(tmp_path.glob("*.part"))
