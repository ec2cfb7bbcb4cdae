"""The side-by-side live text view: rows, their order, and what waits in the live area."""

import io

from rich.console import Console

from livetranslate.present.textview import MAX_PENDING, SideBySideView
from livetranslate.protocol import Event
from livetranslate.protocol import EventKind as K


def view(**kw):
    out = io.StringIO()
    # not a terminal: only what goes up into the scrollback is written, no live area
    return SideBySideView(Console(file=out, width=100, color_system=None), **kw), out


def lines(out):
    return [line.rstrip() for line in out.getvalue().splitlines()]


def t(seg, text):
    return Event(K.TRANSCRIPT, text, seg, seg * 2.0, seg * 2.0 + 1.5, "de")


def tr(seg, text, error=""):
    return Event(K.TRANSLATION, text, seg, seg * 2.0, seg * 2.0 + 1.5, "en", error=error)


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
    assert first.startswith("00:00.0 #0 Guten Morgen zusammen.") and first.endswith("Good morning, everyone.")
    assert second.startswith("00:02.0 #1 Wie geht es euch?") and second.endswith("How are you?")
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
    assert row.startswith("00:00.0 #0 Eins.") and row.endswith("(failed: timed out)")
    assert enhanced == "in context #0-1 One, two." and error == "!! whisper failed on 4.00-5.00 s"
    assert pending.startswith("00:04.0 #2 Drei.") and pending.endswith("…")
    assert end == "-- end of stream (00:07.0 of audio)"


def test_the_live_area_stays_small_and_late_translations_still_show():
    v, out = view()
    for seg in range(MAX_PENDING + 1):
        v.event(t(seg, f"Satz {seg}."))
    [gone] = lines(out)  # the oldest row went up without its translation
    assert gone.startswith("00:00.0 #0 Satz 0.") and gone.endswith("…")
    v.event(tr(0, "Sentence 0."))
    assert lines(out)[-1].startswith("#0") and lines(out)[-1].endswith("Sentence 0.")


def test_without_translation_transcripts_go_up_at_once():
    v, out = view(translate=False)
    v.event(t(0, "Nur Deutsch."))
    assert lines(out) == ["00:00.0 #0 Nur Deutsch."]


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
    assert lines(out)[rows:] == ["in context #2 Three, then.", "in context #0-1 One. Two."]
