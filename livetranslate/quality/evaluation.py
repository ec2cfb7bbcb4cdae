"""Scoring transcripts against references (tests and bench): WER after normalisation.

Two WERs: `wer` compares words as written (lower case, no punctuation), so "3." against
"dritten" is an error; `wer(..., numbers=True)` first spells German numbers, dates, times,
ordinals, decimals and percentages out as words on both sides, so only what was said counts,
not how Whisper chose to write it."""

from __future__ import annotations

import functools
import re

MONTHS_DE = (
    "januar",
    "februar",
    "märz",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "dezember",
)
# Words after which "3." is an ordinal ("am 3.", "im 2. Quartal"), not a number ending a sentence.
_BEFORE_ORDINAL = {
    "am",
    "im",
    "vom",
    "zum",
    "beim",
    "ab",
    "bis",
    "seit",
    "der",
    "die",
    "das",
    "den",
    "dem",
    "des",
    "ein",
    "eine",
    "einen",
    "einem",
    "einer",
    "jeden",
    "jede",
    "jeder",
    "jedem",
    "diesen",
    "diesem",
    "nächsten",
    "letzten",
}
_INFLECTIONS = ("", "n", "r", "s", "m")  # dritte, dritten, dritter, drittes, drittem
_MAX_ORDINAL = 100
_NOT_AFTER = r"(?<![\w.,:])"  # a number starts here, not inside "A4", "1.500" or "14:30"


def _num2words(n: int, to: str = "cardinal") -> str:
    from num2words import num2words

    return num2words(n, lang="de", to=to).lower()


def _integer(digits: str) -> str:
    n = int(digits)
    # An unseparated four-digit number from 1100 to 1999 is read as a year ("1997" is
    # "neunzehnhundertsiebenundneunzig"); German writes amounts of that size as "1.500".
    return _num2words(n, "year") if len(digits) == 4 and 1100 <= n <= 1999 else _num2words(n)


def _decimal(whole: str, fraction: str) -> str:
    # German reads the digits after the comma one by one: 3,25 = "drei Komma zwei fünf"
    return " ".join([_num2words(int(whole)), "komma", *(_num2words(int(d)) for d in fraction)])


def _time(hours: str, minutes: str) -> str:
    spoken = f"{_num2words(int(hours))} uhr"
    return spoken if int(minutes) == 0 else f"{spoken} {_num2words(int(minutes))}"


def _date(m: re.Match) -> str:
    day, month, year = m.groups()
    if not (1 <= int(day) <= 31 and 1 <= int(month) <= 12):
        return m.group(0)  # a version number or the like, not a date
    words = [_num2words(int(day), "ordinal"), _num2words(int(month), "ordinal")]
    if year:
        words.append(_integer(year if len(year) == 4 else "20" + year))
    return " ".join(words)


def _is_ordinal(text: str, start: int, end: int) -> bool:
    """Is the "12." at text[start:end] an ordinal? Yes before a month or a lower-case word, or
    after an article or preposition; a number that ends a sentence stays a cardinal."""
    following = re.match(r"\s+(\w+)", text[end:])
    if following is None:
        return False
    word = following.group(1)
    if word.lower() in MONTHS_DE or word[0].islower():
        return True
    before = re.search(r"(\w+)\W*$", text[:start])
    return before is not None and before.group(1).lower() in _BEFORE_ORDINAL


def _ordinals(text: str) -> str:
    def spell(m: re.Match) -> str:
        if _is_ordinal(text, m.start(), m.end()):
            return _num2words(int(m.group(1)), "ordinal")
        return _integer(m.group(1)) + "."

    return re.sub(_NOT_AFTER + r"(\d+)\.(?!\d)", spell, text)


def spell_numbers(text: str) -> str:
    """German text with its numbers written as words the way they are said: "am 3. März 2025
    um 14:30" -> "am dritte März zweitausendfünfundzwanzig um vierzehn uhr dreißig" (dates,
    times, thousands "1.500", decimals "3,5", ordinals "3.", years "1997", "%" and "€")."""
    text = re.sub(_NOT_AFTER + r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?!\d)", _date, text)
    text = re.sub(_NOT_AFTER + r"(\d{1,2})[:.](\d{2})\s*Uhr\b", lambda m: _time(*m.groups()), text)
    text = re.sub(_NOT_AFTER + r"(\d{1,2}):(\d{2})(?![\w:])", lambda m: _time(*m.groups()), text)
    text = re.sub(
        _NOT_AFTER + r"(\d{1,3}(?:\.\d{3})+)(?!\d)(?!\.\d)",
        lambda m: _num2words(int(m.group(1).replace(".", ""))),
        text,
    )
    text = re.sub(_NOT_AFTER + r"(\d+),(\d+)(?!\w)", lambda m: _decimal(*m.groups()), text)
    text = _ordinals(text)
    text = re.sub(_NOT_AFTER + r"(\d+)(?!\w)", lambda m: _integer(m.group(1)), text)
    return re.sub(r"\s*%", " prozent", text).replace("€", " euro")


@functools.cache
def _number_word_forms() -> dict[str, str]:
    """Spellings of one number that differ only in what the grammar or the speaker chose:
    an ordinal's case ending ("dritten" -> "dritte") and a leading "ein" ("einhundert",
    "eintausendfünfhundert" -> "hundert", "tausendfünfhundert")."""
    forms = {}
    for n in range(1, _MAX_ORDINAL + 1):
        base = _num2words(n, "ordinal")
        forms.update({base + ending: base for ending in _INFLECTIONS})
    forms.update({"siebente" + ending: "siebte" for ending in _INFLECTIONS})
    return forms


def _same_number_words(words: list[str]) -> list[str]:
    forms = _number_word_forms()
    return [re.sub(r"^ein(?=hundert|tausend)", "", forms.get(w, w)) for w in words]


def normalize(text: str, numbers: bool = False) -> str:
    """Lower case, no punctuation, single spaces: WER counts words, not commas. With
    `numbers`, numbers are spelled out first (spell_numbers) and ordinal endings dropped, so
    "am 3." and "am dritten" compare equal."""
    if numbers:
        text = spell_numbers(text)
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(_same_number_words(words) if numbers else words)


def wer(reference: str, hypothesis: str, numbers: bool = False) -> float:
    """Word error rate; `numbers=True` scores numbers by what was said (spelled out on both
    sides), otherwise as they are written."""
    import jiwer

    return jiwer.wer(normalize(reference, numbers), normalize(hypothesis, numbers) or "<empty>")


def wer_both(reference: str, hypothesis: str) -> dict[str, float]:
    """{"wer": numbers as written, "wer_numbers": numbers spelled out on both sides}."""
    return {"wer": wer(reference, hypothesis), "wer_numbers": wer(reference, hypothesis, numbers=True)}


def term_counts(term: str, text: str) -> int:
    """Occurrences of `term` spelled exactly (case included) as whole words."""
    return len(re.findall(rf"(?<!\w){re.escape(term)}(?!\w)", text))


def term_accuracy(terms: list[str], references: list[str], hypotheses: list[str]) -> dict:
    """How many of the terms' occurrences in the references came out spelled exactly right
    in the hypotheses (whole texts: segments need not align with sentences; a term said
    more often than the reference has it counts once per reference occurrence, and the
    surplus as `extra`: a term Whisper read back from its prompt)."""
    reference, hypothesis = " \n ".join(references), " \n ".join(hypotheses)
    per_term = {}
    for term in terms:
        expected = term_counts(term, reference)
        found = term_counts(term, hypothesis)
        per_term[term] = {"expected": expected, "right": min(expected, found), "extra": max(0, found - expected)}
    expected = sum(v["expected"] for v in per_term.values())
    right = sum(v["right"] for v in per_term.values())
    return {
        "right": right,
        "expected": expected,
        "accuracy": round(right / expected, 3) if expected else 0.0,
        "extra": sum(v["extra"] for v in per_term.values()),
        "terms": per_term,
    }
