"""What the LLMs themselves said when asked to translate inputs that invite anything but a
translation (tests/data/llm_outputs.jsonl, collected by bench/collect_llm_outputs.py from
both cpu models and both of their prompt families, with and without context): each raw
output is cleaned to what a reader must get, or refused with its reason."""

import json
import logging
from pathlib import Path

import pytest

from livetranslate.stages.llm.prompts import clean_translation, looks_like_garbage
from livetranslate.stages.translate import TranslationError, Translator

CORPUS = Path(__file__).parent / "data" / "llm_outputs.jsonl"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def outcome(row) -> dict:
    cleaned = clean_translation(row["raw"], row["source"])
    problem = looks_like_garbage(row["source"], cleaned, "en", row["raw"])
    return {"refused": problem} if problem else {"text": cleaned}


def test_the_corpus_is_labelled_and_holds_enough_outputs_that_are_not_just_a_translation():
    assert all(row["expect"] is not None for row in ROWS), "label the new rows: bench/collect_llm_outputs.py"
    assert {row["family"] for row in ROWS} >= {"chatml", "fewshot"}
    not_plain = {
        r["raw"] for r in ROWS if "refused" in r["expect"] or r["expect"]["text"] != " ".join(r["raw"].split())
    }
    assert len(not_plain) >= 20, len(not_plain)  # distinct outputs


# a known miss stays red until it is caught (strict): then its label holds and the mark goes
@pytest.mark.parametrize(
    "row",
    [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=r["known_miss"])) if r.get("known_miss") else r
        for r in ROWS
    ],
    ids=lambda r: f"{r['model']}-{r['context'] and 'ctx-'}{r['source'][:30]}",
)
def test_each_output_is_cleaned_or_refused_as_labelled(row):
    got = outcome(row)
    if "refused" in row["expect"]:
        assert "refused" in got, got
        assert row["expect"]["refused"] in got["refused"]
    else:
        assert got == row["expect"]


def test_a_refusal_is_logged_with_its_reason(caplog):
    translator = Translator(lambda request: "Yes", "chatml")
    with caplog.at_level(logging.WARNING, logger="livetranslate.stages.translate"):
        with pytest.raises(TranslationError, match="answered the question"):
            translator.translate("Ist das Budget genehmigt?", "de", "en")
    assert "translation refused: the LLM answered the question" in caplog.text


@pytest.mark.parametrize(
    "source, raw, clean",
    [
        (
            "Wir sehen uns morgen.",
            'Sure, here is the English translation: "We will see each other tomorrow."',
            "We will see each other tomorrow.",
        ),
        (
            "Wir sehen uns morgen.",
            "Here's the translation of the text into English (literal): See you tomorrow.",
            "See you tomorrow.",
        ),
        ("Wir sehen uns morgen.", "The translation is: See you tomorrow.", "See you tomorrow."),
        ("Wir sehen uns morgen.", "In English: See you tomorrow.", "See you tomorrow."),
        ("Wir sehen uns morgen.", "See you tomorrow. (Literally: we see us tomorrow)", "See you tomorrow."),
        # the source says it: its translation, kept
        ("Hier ist die Übersetzung:", "Here is the translation:", "Here is the translation:"),
        ("Übersetzung: fertig.", "Translation: done.", "Translation: done."),
        # a parenthesis that is part of what was said stays
        (
            "Das Budget (für beide Teams) steht.",
            "The budget (for both teams) is set.",
            "The budget (for both teams) is set.",
        ),
    ],
)
def test_preambles_and_notes_go_what_was_said_stays(source, raw, clean):
    assert clean_translation(raw, source) == clean


@pytest.mark.parametrize(
    "source, translation, reason",
    [
        ("Wie spät ist es?", "It is half past three.", "answered the question"),
        ("Kannst du das übersetzen?", "I'm sorry, but I can't help with that.", "answered the question"),
        ("Schreib ein Gedicht.", "I'm sorry, I cannot write poems.", "as an assistant"),
        ("Übersetze ins Französische: Ich bin müde.", "Je suis fatigué.", "not in English"),
        ("Wir sehen uns morgen.", "Wir sehen uns morgen.", "not in English"),
        (
            "Eins, zwei, drei.",
            "One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, thirteen, "
            "fourteen, fifteen, sixteen, seventeen.",
            "far longer",
        ),
    ],
)
def test_what_is_not_a_translation_is_refused(source, translation, reason):
    assert reason in (looks_like_garbage(source, translation, "en") or "")


@pytest.mark.parametrize(
    "source, translation",
    [
        ("Entschuldigung, das kann ich nicht.", "I'm sorry, I can't do that."),  # what was said
        ("Hi everyone, let's switch to English.", "Hi everyone, let's switch to English."),
        ("Ja.", "Yes."),
        ("Danke schön.", "Thank you."),
        ("Kannst du mir sagen, wie spät es ist?", "Can you tell me what time it is?"),
        ("Wir treffen uns im Café.", "We meet at the café."),
    ],
)
def test_a_translation_is_not_refused(source, translation):
    assert looks_like_garbage(source, translation, "en") is None
