"""The trap set: its references keep every fact, and the wrong readings small models give
are caught."""

import re

import pytest

from livetranslate.traps import TRAPS, Trap, check, facts_kept


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


@pytest.mark.parametrize("start, wrong", [
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
])
def test_a_wrong_reading_is_caught(start, wrong):
    assert check(_trap(start), wrong).lost


def test_curly_apostrophes_and_the_share_of_facts():
    trap = _trap("Du musst das heute")
    assert check(trap, "You don’t have to do that today.").kept
    verdicts = [check(trap, "You don’t have to do that today."), check(_trap("Wir haben zu wenig"), "Too many.")]
    assert facts_kept(verdicts) == 0.5
