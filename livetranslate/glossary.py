"""A session's glossary: the names and terms that must come out right.

A glossary is a UTF-8 text file a user writes by hand, one term per line:

    # names are kept as they are
    Mirelda Oskavit
    Tranovix Hub
    # a term with the translation to use
    Kelvaro Fühler = Kelvaro Probe

Whisper hears the terms before each utterance (its previous-text prompt, where faster-whisper
puts `hotwords`); the translator gets the pairs whose term occurs in the sentence it
translates. A term without a translation is kept as it is in the translation.

Parsing is strict and says which line is wrong: the client checks a file before it streams,
the server checks what arrives again (the START request's GLOSSARY tensor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_TERMS = 200
MAX_LINE_CHARS = 200  # one line: a term and its translation
MAX_BYTES = 32 * 1024
# Whisper's previous-text prompt holds 223 tokens, shared with the speech before the
# utterance: the terms take at most this many characters of it (about 100 tokens).
MAX_HINT_CHARS = 400
# A term matches a sentence spelled a little differently (Whisper's "Zorwexa" for "Zorvexa")
# at this similarity (rapidfuzz, 0-100), when it has at least FUZZY_MIN_CHARS characters.
FUZZY_SIMILARITY = 75.0
FUZZY_MIN_CHARS = 5


class GlossaryError(ValueError):
    """A glossary that cannot be used; the message names the line (the server reports it
    as a protocol error)."""


@dataclass(frozen=True)
class Term:
    source: str  # as spoken (the transcript's language)
    target: str = ""  # its translation; "" keeps the term as it is

    @property
    def translation(self) -> str:
        return self.target or self.source

    def line(self) -> str:
        return f"{self.source} = {self.target}" if self.target else self.source


@dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def to_text(self) -> str:
        """The canonical file text (no comments): what goes over the wire and into storage."""
        return "".join(t.line() + "\n" for t in self.terms)

    def to_list(self) -> list[dict]:
        """For session metadata and exports: [{"term": ..., "translation": ...}]."""
        return [{"term": t.source, "translation": t.target} for t in self.terms]

    @classmethod
    def from_list(cls, items: list[dict]) -> Glossary:
        """As `to_list` wrote it (session metadata); entries that are not terms are skipped."""
        terms = []
        for item in items or []:
            if isinstance(item, dict) and isinstance(item.get("term"), str) and item["term"].strip():
                target = item.get("translation")
                terms.append(Term(item["term"].strip(), target.strip() if isinstance(target, str) else ""))
        return cls(tuple(terms))

    def whisper_hint(self, max_chars: int = MAX_HINT_CHARS) -> str:
        """The terms as Whisper hears them: a comma-separated list, the first terms of the
        file that fit in `max_chars`."""
        hint = ""
        for term in self.terms:
            joined = f"{hint}, {term.source}" if hint else term.source
            if len(joined) > max_chars:
                break
            hint = joined
        return hint

    def relevant(self, text: str) -> Glossary:
        """The terms that occur in `text`: exactly (any case), or, for longer terms, nearly
        (a transcript that misspelled a name still gets its pair)."""
        return Glossary(tuple(t for t in self.terms if occurs(t.source, text)))

    def kept_as_is(self) -> Glossary:
        """The terms without a translation of their own (names): right in any target language,
        unlike pairs written for the speaker's target."""
        return Glossary(tuple(t for t in self.terms if not t.target))

    def pairs(self) -> list[tuple[str, str]]:
        """(term, translation) for a translation prompt."""
        return [(t.source, t.translation) for t in self.terms]


NO_GLOSSARY = Glossary()


def occurs(term: str, text: str) -> bool:
    folded, haystack = term.casefold(), text.casefold()
    if re.search(rf"(?<!\w){re.escape(folded)}(?!\w)", haystack):
        return True
    if len(folded) < FUZZY_MIN_CHARS:
        return False
    from rapidfuzz import fuzz

    return fuzz.partial_ratio(folded, haystack) >= FUZZY_SIMILARITY


def parse(text: str) -> Glossary:
    """A glossary from its file text. GlossaryError names the first line that is wrong."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise GlossaryError(f"the glossary is larger than {MAX_BYTES // 1024} KiB")
    terms: list[Term] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE_CHARS:
            raise GlossaryError(f"glossary line {number} is longer than {MAX_LINE_CHARS} characters")
        if not line.isprintable():
            raise GlossaryError(f"glossary line {number} holds a control character")
        source, sep, target = (part.strip() for part in line.partition("="))
        if not source:
            raise GlossaryError(f"glossary line {number} has no term before '='")
        if sep and not target:
            raise GlossaryError(
                f"glossary line {number} has nothing after '=': "
                f"write the translation, or leave out '=' to keep {source!r} as it is"
            )
        key = source.casefold()
        if key in seen:
            raise GlossaryError(f"glossary line {number} repeats the term {source!r} of line {seen[key]}")
        seen[key] = number
        terms.append(Term(" ".join(source.split()), " ".join(target.split())))
        if len(terms) > MAX_TERMS:
            raise GlossaryError(f"the glossary has more than {MAX_TERMS} terms")
    return Glossary(tuple(terms))


def parse_bytes(data: bytes) -> Glossary:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise GlossaryError(f"the glossary is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}") from None
    return parse(text)


def load(path: str | Path) -> Glossary:
    """A glossary file; GlossaryError (with the file's name) when it cannot be used."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise GlossaryError(f"the glossary is larger than {MAX_BYTES // 1024} KiB")
        data = path.read_bytes()
    except OSError as exc:
        raise GlossaryError(f"cannot read the glossary {path}: {exc.strerror or exc}") from None
    try:
        return parse_bytes(data)
    except GlossaryError as exc:
        raise GlossaryError(f"{path}: {exc}") from None
