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
def test_each_events_cues_hold_its_text_whole(text):
    events = [Event(EventKind.TRANSCRIPT, text, 0, 1.25, 2.5), Event(EventKind.TRANSCRIPT, "danach", 1, 3.0, 4.0)]
    subs = srt_cues(render(events, "srt", (EventKind.TRANSCRIPT,)))
    caps = vtt_cues(render(events, "vtt", (EventKind.TRANSCRIPT,)))
    assert [s[:2] for s in subs] == [c[:2] for c in caps]
    assert subs[0][0] == 1.25 and subs[-1] == (3.0, 4.0, "danach") and caps[-1] == (3.0, 4.0, "danach")
    expected = visible(text) or "…"
    assert visible("".join(c[2] for c in caps[:-1])) == expected  # WebVTT: every visible character back
    assert visible("".join(s[2] for s in subs[:-1])) == expected.replace("-->", "->")
    for content in [s[2] for s in subs] + [c[2] for c in caps]:
        lines = content.split("\n")
        assert len(lines) <= 2 and all(line.strip() and len(line.replace(WORD_JOINER, "")) <= 42 for line in lines)


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
            starts = [c[0] for c in cues]
            assert starts == sorted(starts) and {j * 2.0 for j in range(i + 1)} <= set(starts)
        writer.close()


def test_exports_of_both_languages_put_each_language_on_a_line_of_its_own():
    events = [
        Event(EventKind.TRANSCRIPT, "1 < 2\n\n3", 0, 0.0, 1.0),
        Event(EventKind.TRANSLATION, "Pfeil --> & <i>", 0, 0.0, 1.0, language="en"),
        Event(EventKind.TRANSCRIPT, "zwei", 1, 1.0, 2.0),
    ]
    assert [c[2] for c in srt_cues(export(events, "srt", "both"))] == ["1 < 2 3\nPfeil -> & <i>", "zwei"]
    assert [c[2] for c in vtt_cues(export(events, "vtt", "both"))] == ["1 < 2 3\nPfeil --> & <i>", "zwei"]
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


def test_a_long_sentence_becomes_cues_that_break_where_a_reader_pauses():
    from livetranslate.present.cues import BINDS, cues_for

    said = (
        "Wir haben im letzten Quartal den Umsatz um fünfzehn Prozent gesteigert, aber die Kosten für die "
        "Server sind leider auch gestiegen, und deshalb müssen wir prüfen, ob wir einen günstigeren Anbieter finden."
    )
    made = cues_for(said, 10.0, 21.0)
    assert len(made) == 3 and all(c.lines[-1][-1] in ",." for c in made)  # each cue ends at punctuation
    assert not [line for c in made for line in c.lines if line.split()[-1].lower() in BINDS]  # "den | Umsatz"
    assert made[0].start_s == 10.0 and made[-1].end_s == 21.0  # the sentence's time, shared by length
    assert all(c.characters / (c.end_s - c.start_s) <= 20 for c in made)
    # spoken three times as fast: the cues stay readable (25 characters a second) and run on
    fast = cues_for(said, 10.0, 13.0)
    assert all(c.characters / (c.end_s - c.start_s) <= 25.0 + 1e-9 for c in fast) and fast[-1].end_s > 13.0
    # the file a player reads: every cue two lines of 42 characters at most
    events = [Event(EventKind.TRANSLATION, said, 0, 10.0, 21.0)]
    for content in [s[2] for s in srt_cues(render(events, "srt", (EventKind.TRANSLATION,)))]:
        assert len(content.split("\n")) <= 2 and all(len(line) <= 42 for line in content.split("\n"))
