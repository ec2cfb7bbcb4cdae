"""The terminal view: safe text, wrapping by display width, two columns, rows and their order,
finished text in normal weight and interim text dimmed in place, the one-line summary."""

import fcntl
import io
import os
import re
import struct
import termios

import pytest

from livetranslate.cli import outputs as cli_outputs
from livetranslate.present import terminal as term
from livetranslate.present.readable import CORRECTED_NAME, IMPROVED_NAME
from livetranslate.present.textview import MAX_PENDING, SideBySideView
from livetranslate.protocol import Event
from livetranslate.protocol import EventKind as K

ESCAPE = re.compile(r"\x1b\[([0-9;]*)([A-Za-z])")


def visible(text: str) -> str:
    """What a terminal shows of a line: its escape sequences left out."""
    return ESCAPE.sub("", text).replace("\r", "")


def dimmed(line: str) -> str:
    """The characters of a line written while SGR 2 (dim) is on, as a terminal reads it."""
    dim, out, at = False, [], 0
    for match in ESCAPE.finditer(line):
        if dim:
            out.append(line[at : match.start()])
        at = match.end()
        if match.group(2) == "m":
            for code in (match.group(1) or "0").split(";"):
                dim = True if code == "2" else False if code in ("0", "", "22") else dim
    if dim:
        out.append(line[at:])
    return "".join(out)


class Tty(io.StringIO):
    def isatty(self):
        return True


def view(width=100, height=40, tty=False, **kw):
    out = Tty() if tty else io.StringIO()
    return SideBySideView(out, size=lambda: (width, height), **kw), out


def lines(out):
    return [line.rstrip() for line in out.getvalue().splitlines()]


def t(seg, text, language="de"):
    return Event(K.TRANSCRIPT, text, seg, seg * 2.0, seg * 2.0 + 1.5, language, latency_ms=800.0)


def tr(seg, text, error="", note=""):
    return Event(K.TRANSLATION, text, seg, seg * 2.0, seg * 2.0 + 1.5, "en", 1900.0, error=error, note=note)


# --- text as the terminal gets it -----------------------------------------------------------
def test_control_characters_in_speech_are_harmless():
    hostile = "rot\x1b[31m\x1b]0;pwned\x07 \x9b2J\x08ende\tund\nmehr\x00"
    cleaned = term.clean(hostile)
    assert not re.search("[\x00-\x1f\x7f-\x9f]", cleaned)
    assert cleaned == "rot\u241b[31m\u241b]0;pwned 2Jende und mehr"
    v, out = view(tty=True)
    v.event(t(0, hostile))
    v.event(tr(0, "red \x1b[2J"))
    written = out.getvalue()
    assert "\x1b[31m" not in written and "\x1b]0" not in written and "\x9b" not in written and "\x07" not in written
    assert "\x1b[2J" not in written and "\u241b[2J" in written


def test_width_counts_wide_characters_twice_and_combining_marks_not_at_all():
    assert term.text_width("abc") == 3
    assert term.text_width("日本語") == 6
    assert term.text_width("e\u0301") == 1
    assert term.tail("Guten Morgen", 6) == "…orgen"


@pytest.mark.parametrize("width", [1, 7, 20, 33, 80])
def test_wrapped_lines_fit_and_keep_every_word(width):
    text = (
        "Guten Morgen, willkommen https://example.org/"
        + "x" * 90
        + " 会議を始めましょう。今日の議題は三つあります。 zu unserer Besprechung."
    )
    wrapped = term.wrap(term.words(text), width)
    rendered = [term.render(line, False) for line in wrapped]
    assert all(term.text_width(line) <= max(width, 2) for line in rendered)
    assert "".join(rendered).replace(" ", "") == text.replace(" ", "")
    if width >= 20:  # words go whole onto a line; one longer than any line fills the line it starts on
        [link] = [line for line in rendered if "https://" in line]
        assert rendered[0].startswith("Guten Morgen,") and term.text_width(link) == width


def test_columns_stay_apart_and_narrow_terminals_stack_them():
    left = term.words("Das Wetter in Berlin ist heute sonnig und warm, sagt der Bericht von gestern Abend.")
    right = term.words("日本語の翻訳はここにあります。とても長い文です。")
    rows = [term.render(line, False) for line in term.side_by_side(left, right, 60)]
    assert all(term.text_width(row) <= 60 for row in rows)
    bar = (60 - 3) // 2  # the left column, then the bar
    assert all(row[bar : bar + 2] == " │" for row in rows)  # in one place
    stacked = [term.render(line, False) for line in term.side_by_side(left, right, 30)]
    assert "│" not in "".join(stacked) and all(term.text_width(row) <= 30 for row in stacked)
    assert [row for row in stacked if row.startswith("→ ")] == [stacked[len(term.wrap(left, 30))]]


# --- rows --------------------------------------------------------------------------------
def test_transcript_and_translation_share_a_row_once_the_translation_arrives():
    v, out = view()
    v.event(Event(K.PARTIAL, "Guten Mor", 0))
    v.event(t(0, "Guten Morgen zusammen."))
    v.event(t(1, "Wie geht es euch?"))
    assert lines(out) == []  # both wait for their translations in the live area
    v.event(tr(1, "How are you?"))
    assert lines(out) == []  # row 1 waits behind row 0: rows go up in order
    v.event(tr(0, "Good morning, everyone."))
    first, second = lines(out)
    assert first.startswith("#0 Guten Morgen zusammen.") and first.endswith("│ Good morning, everyone.")
    assert second.startswith("#1 Wie geht es euch?") and second.endswith("│ How are you?")
    assert first.index("Good morning") == second.index("How are you")  # the right column


def test_enhanced_errors_and_end():
    v, out = view()
    v.event(t(0, "Eins."))
    v.event(tr(0, "", error="timed out"))
    v.event(Event(K.ENHANCED, "One, two.", 1, 0.0, 3.5, "en", first_segment_id=0))
    v.event(Event(K.ENHANCED, "", 2, 0.0, 3.5, "en", first_segment_id=0, error="timed out"))  # nothing to add
    v.event(Event(K.ERROR, "whisper failed on 4.00-5.00 s"))
    v.event(t(2, "Drei."))  # its translation never comes: the end lets it go up
    v.event(Event(K.END, end_s=7.0))
    row, enhanced, error, pending, end = lines(out)
    assert row.startswith("#0 Eins.") and row.endswith("(failed: timed out)")
    assert enhanced.startswith("#0-1") and enhanced.endswith(f"│ One, two. ({IMPROVED_NAME})")
    assert "in context" not in out.getvalue().lower()
    assert error == "!! whisper failed on 4.00-5.00 s"
    assert pending.startswith("#2 Drei.") and pending.endswith("│ …")
    assert end == "-- end of stream (00:07.0 of audio)"


def test_the_live_area_stays_small_and_late_translations_still_show():
    v, out = view()
    for seg in range(MAX_PENDING + 1):
        v.event(t(seg, f"Satz {seg}."))
    [gone] = lines(out)  # the oldest row went up without its translation
    assert gone.startswith("#0 Satz 0.") and gone.endswith("…")
    v.event(tr(0, "Sentence 0."))
    assert lines(out)[-1].startswith("#0") and lines(out)[-1].endswith("│ Sentence 0.")


def test_without_translation_transcripts_go_up_at_once():
    v, out = view(translate=False)
    v.event(t(0, "Nur Deutsch."))
    assert lines(out) == ["#0 Nur Deutsch."]


def test_only_translations_one_column():
    v, out = view(only="translation")
    v.event(t(0, "Eins."))
    v.event(Event(K.PARTIAL_TRANSLATION, "On", 0, language="en"))
    v.event(tr(0, "One.", note="fast"))
    assert lines(out) == ["#0 One. (draft)"]


def test_a_combined_translation_shows_only_when_it_adds_something():
    v, out = view()
    for seg, (de, en) in enumerate([("Eins.", "One."), ("Zwei.", "Two."), ("Drei.", "Three.")]):
        v.event(t(seg, de))
        v.event(tr(seg, en))
    rows = len(lines(out))
    v.event(Event(K.ENHANCED, "one", 0, 0.0, 1.5, "en", first_segment_id=0))  # the same sentence again
    v.event(Event(K.ENHANCED, "Two!", 1, 2.0, 3.5, "en"))  # old form: no FIRST_SEGMENT_ID, same text
    assert len(lines(out)) == rows
    v.event(Event(K.ENHANCED, "Three, then.", 2, 4.0, 5.5, "en", first_segment_id=2))  # says something else
    v.event(Event(K.ENHANCED, "One. Two.", 1, 0.0, 3.5, "en", first_segment_id=0))  # covers two sentences
    added = [(line.split()[0], line.split("│ ")[1]) for line in lines(out)[rows:]]
    assert added == [("#2", "Three, then. (improved)"), ("#0-1", "One. Two. (improved)")]


def test_a_correction_is_a_row_with_a_quiet_mark_and_other_languages_stay_out():
    v, out = view()
    v.event(t(3, "Das Metter ist schön."))
    v.event(tr(3, "The Metter is nice."))
    v.event(Event(K.CORRECTION, "Das Wetter ist schön.", 3, 6.0, 7.5, "de"))
    v.event(Event(K.CORRECTION, "Il fait beau.", 3, 6.0, 7.5, "fr"))  # another viewer's language
    v.event(Event(K.CORRECTION, "The weather is nice.", 3, 6.0, 7.5, "en"))
    first, corrected = lines(out)
    assert corrected.startswith(f"#3 Das Wetter ist schön. ({CORRECTED_NAME})")
    assert corrected.endswith(f"│ The weather is nice. ({CORRECTED_NAME})") and "Il fait" not in out.getvalue()


# --- on a terminal: finished text in normal weight, interim text dimmed and replaced -------
def test_on_a_terminal_finished_text_is_not_dimmed_and_interim_text_is():
    v, out = view(tty=True, status=lambda: "● watching · session s")
    v.event(Event(K.PARTIAL, "Guten Mor", 0))
    v.event(t(0, "Guten Morgen zusammen."))
    v.event(Event(K.PARTIAL_TRANSLATION, "Good mor", 0, language="en"))
    live = out.getvalue()
    assert "Guten Mor" in dimmed(live) and "Good mor" in dimmed(live)
    assert "Guten Morgen zusammen." not in dimmed(live)  # final, though still waiting in the live area
    out.truncate(0), out.seek(0)
    v.event(tr(0, "Good morning, everyone."))
    written = out.getvalue()
    assert re.match(r"\x1b\[\d+A\r\x1b\[2K", written)  # the live area is redrawn in place
    [row] = [line for line in written.split("\n") if "Guten Morgen" in line]
    assert dimmed(row).split() == ["#0", "│"]  # only the id and the bar are quiet
    assert "Good morning, everyone." in visible(row) and "Good mor" not in dimmed(row)
    out.truncate(0), out.seek(0)
    v.stop()
    assert out.getvalue() == "\x1b[1A" + "\r\x1b[2K\n" + "\x1b[1A"  # the live area (the status) is gone


def test_interim_text_never_goes_up_into_the_scrollback():
    v, out = view(tty=True)
    v.event(t(0, "Eins."))
    v.event(Event(K.PARTIAL_TRANSLATION, "On", 0, language="en"))
    for seg in range(1, MAX_PENDING + 1):  # row 0 goes up, still without its translation
        v.event(t(seg, f"Satz {seg}."))
    v.stop()
    scrolled = [visible(line) for line in out.getvalue().split("\n") if "Eins." in line]
    assert scrolled[-1].endswith("│ …") and "On" not in scrolled[-1]


def test_the_width_is_the_terminals_own_not_a_stale_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "33")  # left by a parent (readline sets it), and stale
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
    with os.fdopen(leader, "wb"), open(follower, "w", closefd=True) as terminal:
        assert SideBySideView(terminal)._size()[:2] == (132, 50)
    assert SideBySideView(Tty())._size()[0] == 33  # no terminal to ask: shutil's answer


def test_on_a_terminal_every_line_fits_even_a_huge_one():
    v, out = view(width=80, height=24, tty=True, status=lambda: "● watching · session s · " + "x" * 200)
    v.event(t(0, "Wort " * 2000))  # 10,000 characters: taller than the terminal
    v.event(Event(K.PARTIAL, "noch " * 500, 1))
    v.event(tr(0, "word " * 2000))
    assert max(int(up) for up in re.findall(r"\x1b\[(\d+)A", out.getvalue())) <= 24 - 2  # the live area fits
    v.stop()
    shown = [visible(line) for line in out.getvalue().split("\n")]
    assert max(term.text_width(line) for line in shown) <= 80
    assert all(not line.startswith(" ") or line[38:40] == " │" for line in shown if line.strip())


def test_piped_the_view_writes_no_escapes_and_no_interim_text():
    v, out = view(tty=False)
    v.event(Event(K.PARTIAL, "Guten Mor", 0))
    v.event(t(0, "Guten Morgen."))
    v.event(Event(K.PARTIAL_TRANSLATION, "Good mor", 0, language="en"))
    v.event(tr(0, "Good morning."))
    assert "\x1b" not in out.getvalue() and "mor" not in out.getvalue().replace("morning", "")


# --- the line-per-event text, the status line and the summary ----------------------------
def test_piped_lines_start_at_the_margin_and_say_the_measured_latency():
    assert cli_outputs.format_event(t(2, "Drei."), "text") == "00:04.0 #2 de | Drei.  (0.8 s)"
    assert cli_outputs.format_event(tr(2, "Three."), "text") == "00:04.0 #2 en | Three.  (1.9 s)"
    correction = Event(K.CORRECTION, "Drei!\x1b[2J", 2, 4.0, 5.5, "de")
    assert cli_outputs.format_event(correction, "text") == "00:04.0 #2 de | Drei!\u241b[2J (corrected)"


def test_the_status_line_says_the_latency_the_server_measured():
    outputs = cli_outputs.Outputs("text", None, None, None, K.TRANSLATION)
    assert outputs.latency() == "latency: –"
    outputs._count(tr(0, "One."))  # watch --only translation: no transcripts at all
    assert outputs.latency() == "latency: translation 1.9 s"
    outputs._count(t(1, "Zwei."))
    outputs._count(Event(K.TRANSCRIPT, "Drei.", 2, language="de"))  # not measured: the last measure stays
    assert outputs.latency() == "latency: transcript 0.8 s, translation 1.9 s"


@pytest.mark.parametrize(
    "seconds, words", [(0, "0 s"), (45.4, "45 s"), (200, "3 min 20 s"), (3725, "1 h 2 min"), (-1, "0 s")]
)
def test_durations_in_words(seconds, words):
    assert cli_outputs.duration_words(seconds) == words


def test_the_summary_line():
    assert cli_outputs.summary_line("standup", 12, 200) == (
        "session standup: 12 lines in 3 min 20 s, stored (livetranslate export standup)"
    )
    board = cli_outputs.summary_line("board meeting\x1b[2J", 1, 5)
    assert (
        board == "session board meeting\u241b[2J: 1 line in 5 s, stored (livetranslate export 'board meeting\u241b[2J')"
    )


def test_ctrl_c_waits_until_the_event_being_shown_is_shown(capsys):
    outputs = cli_outputs.Outputs("text", None, None, None, K.TRANSLATION)
    with pytest.raises(KeyboardInterrupt):
        outputs.interrupt()  # nothing being shown: at once
    outputs.interrupted = False
    shown = []
    outputs._show = lambda event: (outputs.interrupt(), shown.append(event))  # Ctrl-C mid-event
    with pytest.raises(KeyboardInterrupt):
        outputs.event(t(0, "Eins."))
    assert shown == [t(0, "Eins.")] and outputs.interrupted
