"""How transcripts write numbers (livetranslate/numbers.py): one rule, whether Whisper wrote
digits or words, so partials, transcripts, the store and exports agree."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livetranslate.numbers import written_numbers
from livetranslate.quality import samples, samples_natural
from livetranslate.quality.evaluation import normalize, wer

FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def de(text: str) -> str:
    return written_numbers(text, "de")


@pytest.mark.parametrize(
    "said, written",
    [
        ("Im Jahr zweitausendsechsundzwanzig.", "Im Jahr 2026."),
        ("Wir treffen uns um fünfzehn Uhr.", "Wir treffen uns um 15 Uhr."),
        ("Es stieg um drei Komma fünf Prozent.", "Es stieg um 3,5 Prozent."),
        ("Der Zug fährt um sieben Uhr fünfundvierzig.", "Der Zug fährt um 7:45 Uhr."),
        ("Der Zug fährt um 7 Uhr 45.", "Der Zug fährt um 7:45 Uhr."),
        ("Das kostet einhundertfünfzig Euro.", "Das kostet 150 Euro."),
        ("Der Gewinn liegt bei zweihundertvierzehntausend Euro.", "Der Gewinn liegt bei 214.000 Euro."),
        ("Es waren zwei Millionen Menschen.", "Es waren 2 Millionen Menschen."),
        ("Es waren dreizehn Leute.", "Es waren 13 Leute."),
        (
            "Die Messe läuft vom einunddreißigsten März bis zum vierten April.",
            "Die Messe läuft vom 31. März bis zum 4. April.",
        ),
        ("Er wurde am zwanzigsten.", "Er wurde am 20."),
        ("Bitte öffnet Seite drei.", "Bitte öffnet Seite 3."),
        ("fünf Uhr", "5 Uhr"),
        ("null Komma fünf", "0,5"),
        # zero to twelve standing alone are words, whichever way Whisper wrote them
        ("Ich habe 2 Kinder.", "Ich habe zwei Kinder."),
        ("2 Kinder spielen. 3 Katzen schauen zu.", "Zwei Kinder spielen. Drei Katzen schauen zu."),
        ("Wir kommen um halb 3.", "Wir kommen um halb 3."),  # "3." is left as written (ordinal or not)
        ("Wir kommen um halb 3 an.", "Wir kommen um halb drei an."),
    ],
)
def test_examples(said, written):
    assert de(said) == written


@pytest.mark.parametrize(
    "text",
    [
        "Ich habe zwei Kinder und eine Katze.",
        "Ein Mann kam mit einem Hund, einer Katze und einen Vogel.",
        "der zweite Punkt",
        "Eins",
        "eine Million Menschen",
        "in Acht nehmen",
        "Mehl sieben",
        "Null Toleranz",
        "Am 3. März 2025 um 14:30 Uhr",
        "1,5 Millionen",
        "1.500 Besucher",
        "Halle 12 ist gebucht.",
        "Das sind 12 % mehr.",
        "Das sind 2% mehr, 5€, 3°.",
        "A4, 2-mal, 3er, G7",
        "zwei, drei",
        "Das ist 1 Kind.",
        "zweimal, zweifach, Hunderte, Tausende, Achtung, Elfen, Viertel",
    ],
)
def test_left_as_it_is(text):
    assert de(text) == text


@pytest.mark.parametrize(
    "greedy, beam",
    [
        ("zweitausendsechsundzwanzig", "2026"),
        ("fünfzehn Uhr", "15 Uhr"),
        ("drei Komma fünf Prozent", "3,5 Prozent"),
        ("sieben Uhr fünfundvierzig", "7:45 Uhr"),
        ("zwei Kinder", "2 Kinder"),
        ("am dritten März", "am 3. März"),
        ("zweihundertvierzehntausend Euro", "214.000 Euro"),
        ("Seite drei", "Seite 3"),
        ("zwei Millionen", "2 Millionen"),
        ("um zehn Uhr", "um 10 Uhr"),
    ],
)
def test_a_partial_and_its_final_write_a_number_the_same_way(greedy, beam):
    assert de(f"Wir haben {greedy} gesagt") == de(f"Wir haben {beam} gesagt")


def test_other_languages_are_left_as_whisper_wrote_them():
    for language in ("en", "fr", "auto", ""):
        assert (
            written_numbers("two thousand and 2 Kinder zweitausend", language)
            == "two thousand and 2 Kinder zweitausend"
        )
    assert written_numbers("zweitausend", "de-DE") == "2000"


# --- properties ----------------------------------------------------------------------------
NUMBERS = [
    "null",
    "eins",
    "zwei",
    "Drei",
    "sieben",
    "Acht",
    "zwölf",
    "dreizehn",
    "zwanzig",
    "dreißig",
    "hundert",
    "einhundertfünfzig",
    "tausend",
    "zweitausendsechsundzwanzig",
    "neunzehnhundertsiebenundneunzig",
    "zweihundertvierzehntausend",
    "dritten",
    "zwanzigsten",
    "erste",
    "Komma",
    "0",
    "1",
    "2",
    "3",
    "9",
    "12",
    "13",
    "48",
    "2024",
    "10000",
    "3,5",
    "1.500",
    "14:30",
    "3.",
]
WORDS = [
    "ich",
    "Kinder",
    "Uhr",
    "Prozent",
    "Euro",
    "Millionen",
    "Seite",
    "März",
    "halb",
    "und",
    "oder",
    "ein",
    "eine",
    "einen",
    "der",
    "Leute",
    "Haus",
    "Grad",
    "Minuten",
    "Jahr",
    "am",
    "%",
    "€",
]
SEPARATORS = [" ", " ", " ", ", ", ". ", "! ", "? ", "; ", " - ", "\n", "  "]
pieces = st.lists(st.tuples(st.sampled_from(NUMBERS + WORDS), st.sampled_from(SEPARATORS)), max_size=14)


def joined(parts) -> str:
    return "".join(token + separator for token, separator in parts).strip()


@FAST
@given(pieces)
def test_applying_it_twice_changes_nothing(parts):
    once = de(joined(parts))
    assert de(once) == once


@FAST
@given(pieces)
def test_it_never_touches_a_word_that_is_not_a_number(parts):
    text = joined(parts)
    words = set(WORDS)

    def others(t: str) -> list[str]:
        return [w for w in re.findall(r"[^\W\d_]+|[%€]", t) if w in words]

    assert others(de(text)) == others(text)


@FAST
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=80))
def test_text_without_numbers_comes_back_byte_for_byte(text):
    from text_to_num import alpha2digit

    if any(c.isdigit() for c in text) or alpha2digit(text, "de", ordinal_threshold=0) != text:
        return  # it has a number (as text2num reads it)
    assert de(text) == text


# --- the evaluation scores what was said, however it is written -------------------------
def _reference_lines() -> list[str]:
    lines = [line.de for line in samples_natural.MEETING]
    lines += [line.spoken for line in samples_natural.MEETING if line.spoken]
    return lines + [str(t) for t in samples.MEETING_DE] + [str(t) for t in samples.SENTENCES_DE]


@pytest.mark.parametrize("line", _reference_lines())
def test_wer_with_numbers_spelled_out_is_unchanged(line):
    written = de(line)
    assert normalize(written, numbers=True) == normalize(line, numbers=True)
    assert wer(line, written, numbers=True) == 0.0


def test_a_transcript_and_its_partials_are_written_by_the_rule(tmp_path):
    """Through the pipeline (scripted stages): the partial (greedy) says the words, the
    final (beam) writes digits; both come out the same, and so does the stored event."""
    from scripted import Clock, ScriptedStages, Speaker, kinds, silence, speech, wait_for

    from livetranslate.pipeline import Pipeline, PipelineOptions
    from livetranslate.pipeline.streaming import DecodeOptions
    from livetranslate.protocol import EventKind
    from livetranslate.stages.whisper import Transcription
    from livetranslate.store import Hub, SessionStore

    class Numbers(ScriptedStages):
        def whisper(self, request, partial=False):
            text = "Im Jahr zweitausendsechsundzwanzig um fünfzehn Uhr" if partial else "Im Jahr 2026 um 15 Uhr."
            return Transcription(text, "de", 0.0, -0.1)

    clock = Clock()
    stages = Numbers(clock)
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    decode = DecodeOptions(
        policy="utterance", lead_in_s=0.0, prompt_segments=0, partial_interval_s=1.0, partial_min_s=1.0
    )
    pipeline = Pipeline(stages, PipelineOptions(decode=decode), store=store, clock=clock)
    speaker = Speaker(pipeline, clock, 7, session="numbers", translate=False, partials=True)
    for _ in range(2):
        speaker.send(speech(1, 0.5))
    assert wait_for(lambda: kinds(speaker.events, EventKind.PARTIAL))
    speaker.send(silence())
    events = speaker.end()
    partial, transcript = kinds(events, EventKind.PARTIAL)[0], kinds(events, EventKind.TRANSCRIPT)[0]
    assert partial.text == "Im Jahr 2026 um 15 Uhr" and transcript.text == "Im Jahr 2026 um 15 Uhr."
    assert [e.text for e in kinds(store.events("numbers"), EventKind.TRANSCRIPT)] == [transcript.text]
    pipeline.shutdown()


@pytest.mark.parametrize(
    "said, read",
    [
        ("Wir treffen uns um halb drei.", "Wir treffen uns um 2:30 Uhr."),
        ("um halb eins", "um 12:30 Uhr"),
        ("Der Zug fährt um Viertel vor acht Uhr.", "Der Zug fährt um 7:45 Uhr."),
        ("Viertel nach neun", "9:15 Uhr"),
        ("dreiviertel acht", "7:45 Uhr"),
        ("Halb elf im Raum", "10:30 Uhr im Raum"),
        ("um halb 3", "um 2:30 Uhr"),
        # amounts and other halves are not times
        ("halb zwei Stunden", "halb zwei Stunden"),
        ("halb so groß", "halb so groß"),
        ("ein Viertel vor acht Tagen", "ein Viertel vor acht Tagen"),
    ],
)
def test_clock_idioms_reach_the_translator_as_digits(said, read):
    from livetranslate.numbers import clock_times

    assert clock_times(said, "de") == read
    assert clock_times(said, "en") == said
