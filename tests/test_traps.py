"""The trap set: its references keep every fact, and the wrong readings small models give
are caught."""

import re

import pytest

from livetranslate.quality.traps import HELD_OUT, TRAPS, Trap, check, facts_kept


def test_the_set_is_large_enough_and_every_trap_has_facts():
    assert len(TRAPS) >= 40
    assert len({t.de for t in TRAPS}) == len(TRAPS)
    for trap in TRAPS:
        assert trap.facts, trap.de
        for fact in trap.facts:
            re.compile(fact.must), re.compile(fact.never or "x")


@pytest.mark.parametrize("trap", TRAPS, ids=lambda t: t.de[:40])
def test_each_reference_keeps_its_facts(trap: Trap):
    assert check(trap, trap.en).lost == ()


def _trap(start: str) -> Trap:
    return next(t for t in TRAPS if t.de.startswith(start))


@pytest.mark.parametrize(
    "start, wrong",
    [
        ("Wir haben zu wenig", "We have too many people in support."),
        ("Ich hätte die Zahlen", "Yes, I'd like to have them last week."),
        ("Er kommt erst", "He comes first at ten o'clock."),
        ("Wir treffen uns um halb", "We'll meet at half past three."),
        ("Das Büro ist bis", "The office is closed from Friday."),
        ("Den Vertrag hat", "We cancelled the contract with the customer."),
        ("Du musst das heute", "You must not do that today."),
        ("Wir haben dreiundzwanzig", "We have thirty-two customers in Austria."),
        ("Der Umsatz", "Sales fell by twelve percent."),
        ("Der Chef wurde", "Maria was informed by the boss."),
        ("Können Sie mir", "Yes, the report will be ready tomorrow."),
        ("Wir arbeiten nicht mehr", "We still work with this supplier."),
    ],
)
def test_a_wrong_reading_is_caught(start, wrong):
    assert check(_trap(start), wrong).lost


def test_curly_apostrophes_and_the_share_of_facts():
    trap = _trap("Du musst das heute")
    assert check(trap, "You don’t have to do that today.").kept
    verdicts = [check(trap, "You don’t have to do that today."), check(_trap("Wir haben zu wenig"), "Too many.")]
    assert facts_kept(verdicts) == 0.5


@pytest.mark.parametrize("trap", TRAPS + HELD_OUT, ids=lambda t: t.de[:40])
def test_the_pitfall_check_finds_nothing_wrong_with_a_right_translation(trap):
    from livetranslate.numbers import written_numbers
    from livetranslate.stages.llm.prompts import missed_pitfalls

    assert missed_pitfalls(written_numbers(trap.de, "de"), trap.en, "de", "en") == []


@pytest.mark.parametrize(
    "start, wrong, hint",
    [
        ("Wir haben zu wenig", "We have very few people in support.", "zu wenig"),
        ("Die Miete steigt", "The rent is decreasing from January by 50 euros.", "steigen"),
        ("Kaum jemand", "No one has read the mail.", "kaum"),
        ("Du musst das heute", "You must not do that today.", "nicht müssen"),
        ("Wir haben vor drei Wochen", "We started before three weeks.", "vor drei Tagen"),
    ],
)
def test_the_pitfall_check_names_what_a_flipped_translation_lost(start, wrong, hint):
    from livetranslate.stages.llm.prompts import missed_pitfalls

    assert any(hint in h for h in missed_pitfalls(_trap(start).de, wrong, "de", "en"))
    assert missed_pitfalls(_trap(start).de, wrong, "de", "fr") == []  # only for the pairs written


def test_a_translation_that_missed_a_pitfall_is_made_once_more_with_the_hint():
    from livetranslate.stages.translate import Translator

    prompts = []

    def generate(request, **_):
        prompts.append(request.prompt)
        return "We have too few people." if "Careful:" in request.prompt else "We have very few people."

    assert (
        Translator(generate, "chatml").translate("Wir haben zu wenig Leute.", "de", "en") == "We have too few people."
    )
    assert len(prompts) == 2 and "'zu wenig' means 'too few'" in prompts[1]
    # a few-shot prompt has no place for hints: one call
    prompts.clear()
    Translator(generate, "fewshot").translate("Wir haben zu wenig Leute.", "de", "en")
    assert len(prompts) == 1
    # a retry that is no better keeps the first
    prompts.clear()
    assert (
        Translator(lambda r, **_: prompts.append(1) or "We have few people.", "chatml").translate(
            "Wir haben zu wenig Leute.", "de", "en"
        )
        == "We have few people."
        and len(prompts) == 2
    )
