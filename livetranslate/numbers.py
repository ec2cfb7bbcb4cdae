"""How transcripts write numbers: one rule for partials, transcripts, stored sessions and
exports, whether Whisper wrote a number as digits or as words.

The rule, for German (the way German captions write numbers):

- Numbers from 13 up are digits: "zweitausendsechsundzwanzig" -> "2026", "dreizehn" -> "13";
  from 10.000 up with thousands points ("zweihundertvierzehntausend" -> "214.000").
- Decimals, and any number before a unit or after a label, are digits: "drei Komma fünf" ->
  "3,5", "fünf Uhr" -> "5 Uhr", "drei Prozent" -> "3 Prozent", "zwei Millionen" ->
  "2 Millionen", "Seite drei" -> "Seite 3"; times as "7:45 Uhr" ("sieben Uhr
  fünfundvierzig", "7 Uhr 45"). Numbers next to other numbers too ("zwei, drei"
  stays; "zwei drei Leute" -> "2 3 Leute").
- Otherwise a number from zero to twelve standing alone is a word: "2 Kinder" -> "zwei
  Kinder", "um halb drei" stays.
- "ein", "eine", "einen", ... are articles as often as numbers: never changed; nor is "1"
  (it could stand for "ein", "eine" or "eins"), so "eins" alone stays a word too.
- Ordinals: from the 13th up, and any before a month, are digits with a point ("am
  zwanzigsten" -> "am 20.", "am dritten März" -> "am 3. März"); "der zweite Punkt" stays.
- Digits Whisper wrote with points, commas or colons ("3,5", "14:30", "1.500", "3.") stay as
  they are.

Other languages are left as Whisper wrote them. Words are converted by text2num's
alpha2digit; this module decides which words it sees.
"""

from __future__ import annotations

import functools
import re

LANGUAGES = frozenset({"de"})  # the languages the rule is written and tested for

SMALLEST_DIGITS = 13  # a lone cardinal below this is a word, from this up digits
_EIN = frozenset({"ein", "eine", "einen", "einem", "einer", "eines"})
_MAGNITUDES = frozenset({"million", "millionen", "milliarde", "milliarden", "billion", "billionen", "mio", "mrd"})
# after a number: measures, money, percentages, the clock (digits, as captions write them)
_UNITS = frozenset(
    {
        "uhr",
        "prozent",
        "prozentpunkt",
        "prozentpunkte",
        "prozentpunkten",
        "promille",
        "%",
        "‰",
        "euro",
        "€",
        "cent",
        "dollar",
        "$",
        "franken",
        "pfund",
        "grad",
        "°",
        "kilometer",
        "km",
        "meter",
        "zentimeter",
        "cm",
        "millimeter",
        "mm",
        "kilogramm",
        "kilo",
        "kg",
        "gramm",
        "tonnen",
        "tonne",
        "liter",
        "milliliter",
        "hektar",
        "quadratmeter",
        "kubikmeter",
        "watt",
        "kilowatt",
        "megawatt",
        "gigawatt",
        "volt",
        "kilowattstunden",
        "gigabyte",
        "megabyte",
        "terabyte",
    }
    | _MAGNITUDES
)
# before a number: it names something (a page, a rank, an item): digits
_LABELS = frozenset(
    {
        "seite",
        "seiten",
        "kapitel",
        "nummer",
        "nr",
        "platz",
        "rang",
        "artikel",
        "paragraf",
        "paragraph",
        "§",
        "absatz",
        "punkt",
        "tagesordnungspunkt",
        "top",
        "folie",
        "version",
        "zimmer",
        "raum",
        "halle",
        "gleis",
        "linie",
        "bus",
        "stufe",
        "level",
        "teil",
        "band",
        "abschnitt",
        "tabelle",
        "abbildung",
        "frage",
        "aufgabe",
        "runde",
        "woche",
        "kalenderwoche",
        "kw",
        "minus",
        "plus",
        "uhr",
    }
)
_MONTHS = frozenset(
    {
        "januar",
        "jänner",
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
    }
)
_DECIMAL = "komma"

_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:[.,:]\d+)*|[%‰€$°§]")
_PLAIN_INTEGER = re.compile(r"\d+")
_SMALL_WORDS = (
    "null",
    "eins",
    "zwei",
    "drei",
    "vier",
    "fünf",
    "sechs",
    "sieben",
    "acht",
    "neun",
    "zehn",
    "elf",
    "zwölf",
)


def written_numbers(text: str, language: str) -> str:
    """`text` with its numbers written by the rule above (unchanged for other languages).
    Applying it twice changes nothing; words that are not numbers are never changed."""
    if (language or "").split("-")[0].lower() not in LANGUAGES or not text:
        return text
    # one pass can leave a word its rewrite put beside a number ("zwanzigsten null" ->
    # "20. null"); the rule is applied until nothing changes (two passes at most, so far)
    for _ in range(4):
        written = _one_pass(text)
        if written == text:
            break
        text = written
    return text


def _one_pass(text: str) -> str:
    tokens = [_Token(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]
    for i, token in enumerate(tokens):
        token.before = tokens[i - 1] if i and _adjacent(text, tokens[i - 1], token) else None
        token.after = tokens[i + 1] if i + 1 < len(tokens) and _adjacent(text, token, tokens[i + 1]) else None
    out, at = [], 0
    for run in _runs(text, tokens):
        out.append(text[at : run[0].start])
        out.append(_rewrite(text, run))
        at = run[-1].end
    out.append(text[at:])
    return _clock("".join(out))


class _Token:
    __slots__ = ("start", "end", "text", "key", "before", "after")

    def __init__(self, start: int, end: int, text: str):
        self.start, self.end, self.text, self.key = start, end, text, text.lower()
        self.before: _Token | None = None
        self.after: _Token | None = None

    @property
    def spelled(self) -> bool:
        """A number in words, ordinals included (not "ein", not "Millionen")."""
        return self.text[0].isalpha() and _number_word(self.key)

    @property
    def digits(self) -> bool:
        return self.text[0].isdigit()

    @property
    def numeric(self) -> bool:
        return self.spelled or self.digits


def _adjacent(text: str, a: _Token, b: _Token) -> bool:
    """Nothing or only spaces between them ("12 %", "12%"; a comma or a hyphen ends a number)."""
    return not text[a.end : b.start].strip()


@functools.lru_cache(maxsize=4096)
def _number_word(key: str) -> bool:
    if key in _EIN or key in _MAGNITUDES or key == _DECIMAL:
        return False
    from text_to_num import alpha2digit

    return alpha2digit(key, "de", signed=False, ordinal_threshold=0) != key


def _cardinal(token: _Token) -> int | None:
    """The value of a number word; None for an ordinal."""
    from text_to_num import text2num

    try:
        return text2num(token.key, "de")
    except ValueError:
        return None  # an ordinal


def _runs(text: str, tokens: list[_Token]) -> list[list[_Token]]:
    """The stretches the rule may rewrite: adjacent number words (with "Komma" between them),
    and each lone plain integer."""
    runs: list[list[_Token]] = []
    for token in tokens:
        if token.digits:
            if _PLAIN_INTEGER.fullmatch(token.text) and _whole_integer(text, token):
                runs.append([token])
            continue
        joins = token.spelled or (
            token.key == _DECIMAL
            and token.before is not None
            and token.before.spelled
            and token.after is not None
            and token.after.numeric
        )
        if not joins:
            continue
        if runs and runs[-1][-1] is token.before and not runs[-1][-1].digits:
            runs[-1].append(token)
        else:
            runs.append([token])
    return runs


def _whole_integer(text: str, token: _Token) -> bool:
    """ "12" alone, not in "A4", "2-mal", "3er", "3." (an ordinal or a sentence's end: left as written)."""
    before = text[token.start - 1] if token.start else " "
    after = text[token.end] if token.end < len(text) else " "
    return not (before.isalnum() or before in "-/.,+") and not (after.isalnum() or after in "-/.")


def _stands_alone(run: list[_Token]) -> bool:
    """A single number, with no unit after it, no label before it and no number beside it."""
    before, after = run[0].before, run[-1].after
    if before is not None and (before.numeric or before.key in _LABELS or before.key == _DECIMAL):
        return False
    return after is None or not (after.numeric or after.key in _UNITS or after.key == _DECIMAL)


def _rewrite(text: str, run: list[_Token]) -> str:
    span = text[run[0].start : run[-1].end]
    first = run[0]
    if first.digits:  # a lone integer Whisper wrote in digits
        value = int(first.text)
        if value < SMALLEST_DIGITS and value != 1 and _stands_alone(run):
            word = _SMALL_WORDS[value]
            return word.capitalize() if _starts_sentence(text, first.start) else word
        return span
    if len(run) == 1:
        cardinal = _cardinal(first)
        if cardinal is not None and cardinal < SMALLEST_DIGITS and _stands_alone(run):
            return span  # "zwei", "eins": a word, as the rule keeps it
    before_month = run[-1].after is not None and run[-1].after.key in _MONTHS
    written = _digits(span, ordinal_threshold=0 if before_month else SMALLEST_DIGITS - 1)
    if written.endswith(".") and text.startswith(".", run[-1].end):
        written = written[:-1]  # "am zwanzigsten." -> "am 20.", not "am 20.."
    return written


def _clock(text: str) -> str:
    """ "7 Uhr 45" -> "7:45 Uhr", as Whisper writes it when it writes digits."""

    def colon(m: re.Match) -> str:
        hours, minutes = int(m.group(1)), int(m.group(2))
        return f"{hours}:{minutes:02d} Uhr" if hours <= 24 and 0 < minutes < 60 else m.group(0)

    return re.sub(
        r"(?<![\w.,:])(\d{1,2}) Uhr (\d{1,2})(?![\w%€]|[.,:]\d|\s*(?:Minuten|Min\b|%|Prozent|Euro))", colon, text
    )


def _starts_sentence(text: str, at: int) -> bool:
    return re.search(r"(?:^|[!?]|(?<!\d)\.)[\s\"'„“(]*$", text[:at]) is not None


def _digits(span: str, ordinal_threshold: int) -> str:
    from text_to_num import alpha2digit

    written = alpha2digit(span, "de", signed=False, ordinal_threshold=ordinal_threshold)
    # 10.000 and up with thousands points, as German writes amounts (not years: 4 digits)
    return re.sub(r"(?<![\d.,])\d{5,}(?![\d])", lambda m: f"{int(m.group(0)):,}".replace(",", "."), written)


# --- clock idioms, for the translator ------------------------------------------------------
# German says "halb drei" for 2:30 and "Viertel vor acht" for 7:45; LLMs (and people) slip
# to 3:30 and 8:15. The translator reads such a time as digits; the transcript keeps the words.
_HOURS = {w: i for i, w in enumerate(_SMALL_WORDS) if i} | {str(i): i for i in range(1, 25)}
_HOUR = r"(eins|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|1[0-9]|2[0-4]|[1-9])"
# "halb zwei Stunden", "Viertel vor acht Tagen" are amounts, not times
_NOT_A_TIME = r"(?!\s+(stunden?|tage?n?|wochen?|monate?n?|jahre?n?|minuten?|meter|kilo|liter|prozent|mal)\b)"
_CLOCK = re.compile(
    rf"\b(?P<kind>halb|viertel\s+vor|viertel\s+nach|dreiviertel)\s+{_HOUR}\b(?:\s+uhr\b)?{_NOT_A_TIME}", re.IGNORECASE
)


def clock_times(text: str, language: str) -> str:
    """`text` with German clock idioms as digits: "um halb drei" -> "um 2:30 Uhr", "Viertel
    vor acht" -> "7:45 Uhr", "Viertel nach neun" -> "9:15 Uhr", "dreiviertel acht" -> "7:45
    Uhr" (unchanged for other languages)."""
    if (language or "").split("-")[0].lower() != "de" or not text:
        return text

    def digits(m: re.Match) -> str:
        kind = " ".join(m.group("kind").lower().split())
        hour = _HOURS[m.group(2).lower()]
        if kind == "viertel nach":
            return f"{hour}:15 Uhr"
        before = hour - 1 if hour > 1 else 12
        return f"{before}:{'30' if kind == 'halb' else '45'} Uhr"

    return _CLOCK.sub(digits, text)
