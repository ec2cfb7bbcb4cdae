"""WER as written and with German numbers spelled out on both sides (livetranslate/quality/evaluation.py)."""

import pytest

from livetranslate.quality.evaluation import normalize, spell_numbers, wer, wer_both


def test_a_date_and_time_in_digits_is_what_was_said_in_words():
    written = "am 3. März 2025 um 14:30"
    said = "am dritten März zweitausendfünfundzwanzig um vierzehn Uhr dreißig"
    assert wer(written, said, numbers=True) == 0.0
    assert wer(written, said) > 0.5  # as written, nearly every word differs
    scores = wer_both(written, said)
    assert scores["wer_numbers"] == 0.0 and scores["wer"] == wer(written, said)


@pytest.mark.parametrize(
    "written, said",
    [
        ("Die Frist endet am 30.04.", "Die Frist endet am dreißigsten vierten."),
        ("Start ist am 12.05.2025.", "Start ist am zwölften fünften zweitausendfünfundzwanzig."),
        ("Der Zug fährt um 7:45 Uhr.", "Der Zug fährt um sieben Uhr fünfundvierzig."),
        ("Der Zug fährt um 7.45 Uhr.", "Der Zug fährt um sieben Uhr fünfundvierzig."),
        ("Ab 18:00 Uhr ist zu.", "Ab achtzehn Uhr ist zu."),
        ("Das sind 12 % mehr.", "Das sind zwölf Prozent mehr."),
        ("Sie stiegen um 3,5 Prozent.", "Sie stiegen um drei Komma fünf Prozent."),
        ("Wir haben 1,8 Millionen Euro Umsatz.", "Wir haben eins komma acht Millionen Euro Umsatz."),
        ("Der Gewinn liegt bei 214.000 Euro.", "Der Gewinn liegt bei zweihundertvierzehntausend Euro."),
        ("Es waren 1.200 Datensätze.", "Es waren eintausendzweihundert Datensätze."),
        ("Es waren 1.200 Datensätze.", "Es waren tausendzweihundert Datensätze."),
        ("Es kostet 100 €.", "Es kostet hundert Euro."),
        ("Sie ist seit 1997 Kundin.", "Sie ist seit neunzehnhundertsiebenundneunzig Kundin."),
        ("Im 2. Quartal wuchs es.", "Im zweiten Quartal wuchs es."),
        ("Er kam als 1. an.", "Er kam als erster an."),
        ("Am 7. Juni.", "Am siebenten Juni."),
        ("Halle 12 ist gebucht.", "Halle zwölf ist gebucht."),
    ],
)
def test_numbers_written_either_way_score_the_same(written, said):
    assert normalize(written, numbers=True) == normalize(said, numbers=True)
    assert wer(written, said, numbers=True) == 0.0


def test_a_number_that_ends_a_sentence_is_no_ordinal():
    assert spell_numbers("Wir waren 3. Dann gingen wir.") == "Wir waren drei. Dann gingen wir."
    assert spell_numbers("Halle 12.") == "Halle zwölf."
    assert spell_numbers("am 3. März") == "am dritte März"


def test_other_tokens_with_digits_are_left_alone():
    assert normalize("A4 und 3G", numbers=True) == "a4 und 3g"
    assert "zweite" not in normalize("Version 2.0.1", numbers=True)  # not a date
    assert "nullte" not in normalize("am 0.0.", numbers=True)


def test_a_wrong_number_still_counts_as_an_error():
    assert wer("am 3. März", "am vierten März", numbers=True) == pytest.approx(1 / 3)
    assert wer("um 14:30 Uhr", "um 14:40 Uhr", numbers=True) > 0


def test_without_numbers_normalisation_is_unchanged():
    assert normalize("Hallo, Welt! 3. März") == "hallo welt 3 märz"
    assert wer("Hallo Welt", "hallo, welt.") == 0.0
    assert wer("Hallo Welt", "") == 1.0
