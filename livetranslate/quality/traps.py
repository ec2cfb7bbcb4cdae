"""German sentences whose translation easily changes their meaning, each with the facts its
English must keep (bench/bench_traps.py, tests/test_traps.py).

Small models flip these: "zu wenig" becomes "too many", "erst um zehn" becomes "first at
ten", "halb drei" becomes half past three, "bis Freitag" becomes "from Friday", the object
of a German sentence in first place becomes its subject. A fact is a pattern the English
must contain (any of several correct wordings) and, where a wrong reading has a telltale
wording, a pattern it must not contain. Patterns are matched case-insensitively on the
translation with curly apostrophes straightened.

Written before any prompt or model choice was tuned on it; a translation that keeps the
meaning in a wording the patterns miss is a defect of the pattern: widen it, say so in the
commit, and never narrow a pattern to let a model pass."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    what: str  # what a reader must get right, in words
    must: str  # a regular expression the translation contains
    never: str = ""  # one it must not contain (the wrong reading)


@dataclass(frozen=True)
class Trap:
    de: str
    en: str  # a reference translation (chrF)
    facts: tuple[Fact, ...]


def _t(de: str, en: str, *facts: tuple[str, ...]) -> Trap:
    return Trap(de, en, tuple(Fact(*f) for f in facts))


# fmt: off
TRAPS: tuple[Trap, ...] = (
    # too few / too many
    _t("Wir haben zu wenig Leute im Support.", "We have too few people in support.",
       ("too few", r"too few|not enough|too little|understaffed|short of|lack", r"too many|too much|enough people")),
    _t("Im Lager liegen zu viele alte Geräte.", "There are too many old devices in the warehouse.",
       ("too many", r"too many|too much|excess", r"too few|not enough")),
    _t("Für dieses Projekt haben wir viel zu wenig Zeit eingeplant.",
       "We have planned far too little time for this project.",
       ("too little time", r"too little|not enough|too short|insufficient", r"too much|too long")),
    # no longer / still / already / not yet
    _t("Wir arbeiten nicht mehr mit diesem Lieferanten zusammen.", "We no longer work with this supplier.",
       ("no longer", r"no longer|any ?more|stopped|ceased|not .{0,20}longer", r"\bstill\b")),
    _t("Wir arbeiten noch mit dem alten System.", "We are still working with the old system.",
       ("still", r"\bstill\b", r"no longer|any ?more")),
    _t("Ich habe die Rechnung noch nicht bezahlt.", "I haven't paid the invoice yet.",
       ("not paid yet", r"\bnot\b|n't|\byet\b|unpaid", r"already")),
    _t("Das Projekt ist schon fertig.", "The project is already finished.",
       ("already done", r"already", r"\bnot\b|n't|\byet\b")),
    _t("Er kommt erst um zehn Uhr.", "He won't come until ten o'clock.",
       ("not before ten", r"\b(10|ten)\b", r"\bfirst\b")),
    # until / from
    _t("Das Büro ist bis Freitag geschlossen.", "The office is closed until Friday.",
       ("until Friday", r"(until|till|through|up to|to)\s+friday", r"(from|starting|as of|beginning)\s+(on\s+)?friday")),
    _t("Ab Montag gilt die neue Regel.", "From Monday, the new rule applies.",
       ("from Monday on", r"(from|starting|as of|beginning|effective|on)\s+(on\s+)?monday", r"(until|till|by)\s+monday")),
    _t("Bitte schick mir den Bericht bis spätestens Donnerstag.",
       "Please send me the report by Thursday at the latest.",
       ("by Thursday", r"(by|before|no later than|until)\s+(thursday|the latest)|thursday at the latest",
        r"earliest|from thursday")),
    _t("Ich hätte die Zahlen gern bis nächste Woche.", "I would like to have the figures by next week.",
       ("by next week", r"next week", r"last week")),
    _t("Die Miete steigt ab Januar um 50 Euro.", "The rent will rise by 50 euros from January.",
       ("from January", r"(from|starting|as of|beginning|in)\s+(in\s+)?january", r"(until|by)\s+january"),
       ("50 euros", r"\b(50|fifty)\b.{0,3}(euro|€)|€\s?50"),
       ("goes up", r"ris|increas|go(es)? up|going up|up by|higher|rais", r"decreas|fall|lower|drop")),
    # at most / at least
    _t("Die Besprechung dauert höchstens eine halbe Stunde.", "The meeting lasts at most half an hour.",
       ("at most", r"at most|no more than|maximum|not .{0,12}(longer|more) than|max|up to", r"at least|minimum"),
       ("half an hour", r"half an hour|half-hour|half hour|30 minutes|thirty minutes")),
    _t("Wir brauchen mindestens drei neue Server.", "We need at least three new servers.",
       ("at least", r"at least|minimum|no fewer than|no less than", r"at most|maximum"),
       ("three", r"\b(three|3)\b")),
    # numbers, rising and falling
    _t("Der Umsatz ist um zwölf Prozent gestiegen.", "Sales rose by twelve percent.",
       ("twelve percent", r"\b(12|twelve)\b\s*(%|percent|per cent)"),
       ("went up", r"rose|risen|increas|grew|grown|\bup\b|higher|climbed|gain",
        r"fell|fallen|decreas|dropped|declin|lower")),
    _t("Die Kosten sind im letzten Quartal um acht Prozent gesunken.",
       "Costs fell by eight percent in the last quarter.",
       ("eight percent", r"\b(8|eight)\b\s*(%|percent|per cent)"),
       ("went down", r"fell|fallen|decreas|dropped|declin|down|lower|sunk|sank|reduc",
        r"rose|risen|increas|grew")),
    _t("Das kostet zweitausendfünfhundert Euro.", "That costs two thousand five hundred euros.",
       ("2,500 euros", r"2[,.\s]?500|two thousand,? five hundred|2\.5 thousand|twenty-five hundred"),
       ("euros", r"euro|€")),
    _t("Wir haben dreiundzwanzig Kunden in Österreich.", "We have twenty-three customers in Austria.",
       ("23", r"\b(23|twenty[- ]three)\b", r"\b(32|thirty[- ]two)\b"), ("Austria", r"austria")),
    _t("Im Mai hatten wir elf Ausfälle, im Juni nur zwei.", "In May we had eleven outages, in June only two.",
       ("eleven in May", r"\b(11|eleven)\b"), ("two in June", r"\b(2|two)\b"),
       ("May and June", r"\bmay\b.*\bjune\b")),
    _t("Nur ein Drittel der Mitarbeiter hat geantwortet.", "Only a third of the employees replied.",
       ("a third", r"(a|one)[- ]third|1/3|33", r"\bthree\b"), ("only", r"\bonly\b|just")),
    _t("Die Zahl der Anfragen hat sich verdoppelt.", "The number of requests has doubled.",
       ("doubled", r"doubled|twice|two times|double", r"halved")),
    _t("Der Preis wurde halbiert.", "The price was halved.",
       ("halved", r"halved|half|in half|50 ?%|fifty percent", r"doubled")),
    _t("Fast alle Tests sind fehlgeschlagen.", "Almost all tests failed.",
       ("almost all", r"almost|nearly|virtually|most"), ("failed", r"fail", r"passed|succeeded")),
    _t("Kaum jemand hat die Mail gelesen.", "Hardly anyone read the email.",
       ("hardly anyone", r"hardly|barely|scarcely|almost no|few|almost nobody", r"everyone|everybody")),
    # times and dates
    _t("Wir treffen uns um halb drei.", "We'll meet at half past two.",
       ("2:30", r"half past two|2[:.]30|two[- ]thirty|14[:.]30", r"half past three|3[:.]30|three[- ]thirty")),
    _t("Der Zug fährt um Viertel vor acht.", "The train leaves at a quarter to eight.",
       ("7:45", r"quarter to eight|7[:.]45|seven forty[- ]five|quarter of eight|19[:.]45", r"quarter past")),
    _t("Die Lieferung kommt am dritten März.", "The delivery arrives on March third.",
       ("3 March", r"\b(3|3rd|third)\b.{0,8}march|march.{0,8}\b(3|3rd|third)\b")),
    _t("Der Termin wurde vom 14. auf den 21. Mai verschoben.",
       "The appointment was moved from May 14 to May 21.",
       ("from the 14th to the 21st", r"14.{0,30}21"), ("May", r"\bmay\b")),
    _t("Wir haben vor drei Wochen angefangen.", "We started three weeks ago.",
       ("three weeks ago", r"\b(three|3) weeks ago", r"in (three|3) weeks")),
    _t("In zwei Tagen ist die Frist vorbei.", "The deadline passes in two days.",
       ("in two days", r"\b(two|2) days", r"\bago\b")),
    _t("Ich arbeite seit fünf Jahren hier.", "I have been working here for five years.",
       ("for five years", r"(for|since)\s+(the\s+(last|past)\s+)?(five|5) years|(five|5) years now",
        r"\bago\b|in (five|5) years")),
    # comparisons
    _t("Das neue Modell ist doppelt so schnell wie das alte.", "The new model is twice as fast as the old one.",
       ("twice as fast", r"twice|two times|double", r"half")),
    _t("Unser Team ist kleiner als das in Berlin.", "Our team is smaller than the one in Berlin.",
       ("smaller", r"smaller|fewer|less", r"bigger|larger")),
    _t("Die zweite Version ist nicht besser als die erste.", "The second version is not better than the first.",
       ("not better", r"(not|n't|no)\s+(any\s+)?better")),
    _t("Der zweite Entwurf ist länger als der erste, aber klarer.",
       "The second draft is longer than the first, but clearer.",
       ("longer", r"longer", r"shorter"), ("clearer", r"clearer|more clear")),
    # who does what
    _t("Anna hat Peter die Unterlagen geschickt.", "Anna sent Peter the documents.",
       ("Anna sent", r"\banna\b.{0,12}\b(sent|send|mailed|emailed|forwarded|gave)", r"peter\s+(has\s+)?sent")),
    _t("Den Vertrag hat der Kunde gekündigt, nicht wir.", "The customer cancelled the contract, not us.",
       ("the customer cancelled", r"customer|client", r"\bwe\s+(have\s+)?(cancel|terminat)"),
       ("not us", r"not (us|we)|we didn't|we did not|n't us")),
    _t("Der Chef wurde von Maria informiert.", "The boss was informed by Maria.",
       ("Maria informed the boss", r"by maria|maria (has\s+)?(informed|told|notified)", r"maria was informed")),
    _t("Die Kundin hat uns angerufen, nicht umgekehrt.", "The customer called us, not the other way round.",
       ("the customer called", r"(customer|client).{0,20}call(ed)?\s+us|called us", r"we called")),
    # must / may / negation
    _t("Du musst das heute nicht machen.", "You don't have to do that today.",
       ("no need", r"(don't|do not|doesn't|does not)\s+(have|need) to|needn't|no need|not necessary|not have to|not need to",
        r"must not|mustn't|shouldn't|can't|cannot|not allowed")),
    _t("Du darfst das Passwort nicht weitergeben.", "You must not share the password.",
       ("not allowed", r"must not|mustn't|not allowed|may not|cannot|can't|shouldn't|should not|don't|do not|never|not permitted",
        r"(don't|do not) (have|need) to|needn't")),
    _t("Das Meeting ist nicht am Dienstag, sondern am Mittwoch.",
       "The meeting is not on Tuesday but on Wednesday.",
       ("Wednesday", r"wednesday"), ("not Tuesday", r"(not|n't)\s+(on\s+)?tuesday")),
    _t("Keiner von uns war bei dem Termin.", "None of us was at the appointment.",
       ("none of us", r"none of us|no one|nobody|not one of us|neither")),
    _t("Weder der Server noch die Datenbank sind betroffen.", "Neither the server nor the database is affected.",
       ("neither is affected", r"neither|\bnor\b|not affected|unaffected", r"^both")),
    _t("Wir können den Preis nicht weiter senken.", "We cannot lower the price any further.",
       ("cannot", r"can(no|')t|can not|unable|not able"), ("lower", r"lower|reduce|cut|decrease|drop|bring down")),
    _t("Bitte ruf mich nach der Mittagspause an, nicht davor.", "Please call me after the lunch break, not before.",
       ("after lunch", r"after\s+(the\s+|my\s+)?(lunch|midday)", r"before\s+(the\s+|my\s+)?(lunch|midday)"),
       ("not before", r"not before")),
    _t("Wir liefern nicht nach Frankreich, nur nach Belgien.", "We don't deliver to France, only to Belgium.",
       ("not to France", r"(not|n't|never).{0,25}france"), ("only Belgium", r"only.{0,12}belgium|belgium only")),
    # a question to translate, not to answer
    _t("Können Sie mir sagen, wann der Bericht fertig ist?", "Can you tell me when the report will be ready?",
       ("a question", r"\?\s*$", r"^(yes|no|sure|of course)\b"), ("when", r"\bwhen\b")),
)
# fmt: on

# Written after the first measurement of TRAPS, before any prompt was changed, and never
# used to tune one: the figures on these are the ones that say whether a change generalizes.
# fmt: off
HELD_OUT: tuple[Trap, ...] = (
    _t("Es gab zu wenige Anmeldungen für den Kurs.", "There were too few registrations for the course.",
       ("too few", r"too few|not enough|too little|insufficient", r"too many|too much")),
    _t("Wir haben viel zu viel Geld für Werbung ausgegeben.", "We spent far too much money on advertising.",
       ("too much", r"too much|too many|excessive|overspent", r"too little|not enough")),
    _t("Der Drucker funktioniert nicht mehr.", "The printer no longer works.",
       ("no longer", r"no longer|any ?more|stopped|not .{0,12}longer", r"\bstill\b")),
    _t("Die Kollegen aus Hamburg sind noch nicht da.", "The colleagues from Hamburg are not here yet.",
       ("not yet", r"not .{0,20}yet|n't .{0,20}yet|still not|still n't|haven't arrived|have not arrived",
        r"already|no longer|any ?more")),
    _t("Das Angebot gilt nur bis Ende Juni.", "The offer is only valid until the end of June.",
       ("until June", r"(until|till|through|to|by)\s+(the\s+)?end of june", r"(from|starting)\s+(the\s+)?end of june")),
    _t("Ab sofort müssen alle Besucher sich anmelden.", "From now on, all visitors must register.",
       ("from now on", r"from now on|effective immediately|immediately|starting (now|today)|as of now|with immediate effect")),
    _t("Wir sehen uns um halb elf im Konferenzraum.", "See you at half past ten in the conference room.",
       ("10:30", r"half past ten|10[:.]30|ten[- ]thirty|22[:.]30", r"half past eleven|11[:.]30|eleven[- ]thirty")),
    _t("Der Anruf ist um Viertel nach neun.", "The call is at a quarter past nine.",
       ("9:15", r"quarter past nine|9[:.]15|nine[- ]fifteen|quarter after nine|21[:.]15", r"quarter to|8[:.]45")),
    _t("Die Schulung dauert nicht länger als zwei Stunden.", "The training lasts no longer than two hours.",
       ("at most two hours", r"(no|not)\s+(any\s+)?(longer|more) than|at most|maximum|up to|less than",
        r"at least")),
    _t("Das Team besteht aus mindestens fünf Personen.", "The team consists of at least five people.",
       ("at least five", r"at least (five|5)|minimum of (five|5)|(five|5) or more", r"at most")),
    _t("Die Preise sind im Oktober um drei Prozent gefallen.", "Prices fell by three percent in October.",
       ("fell", r"fell|fallen|decreas|dropped|declin|down|lower|sank|sunk", r"rose|risen|increas|grew"),
       ("three percent", r"\b(3|three)\b\s*(%|percent|per cent)")),
    _t("Die Zahl der Nutzer ist deutlich gestiegen.", "The number of users has risen significantly.",
       ("rose", r"rose|risen|increas|grew|grown|gone up|went up|climbed|higher", r"fell|fallen|decreas|dropped|declin")),
    _t("Du brauchst dich nicht zu entschuldigen.", "You don't need to apologize.",
       ("no need", r"(don't|do not|doesn't|does not)\s+(have|need) to|needn't|no need|not necessary",
        r"must not|mustn't|shouldn't|can't|cannot|not allowed")),
    _t("Ihr dürft den Raum während der Prüfung nicht verlassen.",
       "You must not leave the room during the exam.",
       ("not allowed", r"must not|mustn't|not allowed|may not|cannot|can't|are not permitted|aren't allowed|do not|don't",
        r"(don't|do not) (have|need) to|needn't")),
    _t("Sie ist erst seit Montag im Team.", "She has only been on the team since Monday.",
       ("only since Monday", r"only|just|not until", r"\bfirst\b"), ("since Monday", r"since monday")),
    _t("Die Rechnung hat der Lieferant geschickt, nicht die Bank.",
       "The supplier sent the invoice, not the bank.",
       ("the supplier sent", r"supplier|vendor", r"the bank (has\s+)?sent"), ("not the bank", r"not (from )?the bank")),
    _t("Der Bericht wurde von Jonas geschrieben.", "The report was written by Jonas.",
       ("Jonas wrote it", r"by jonas|jonas (has\s+)?(wrote|written)", r"jonas was written")),
    _t("Wir haben vor zehn Tagen bestellt, aber nichts bekommen.",
       "We ordered ten days ago but have received nothing.",
       ("ten days ago", r"\b(ten|10) days ago", r"in (ten|10) days"), ("nothing", r"nothing|not (received|gotten|got) anything|haven't received|no")),
    _t("Wir haben siebenundvierzig offene Tickets.", "We have forty-seven open tickets.",
       ("47", r"\b(47|forty[- ]seven)\b", r"\b(74|seventy[- ]four)\b")),
    _t("Die neue Version ist halb so groß wie die alte.", "The new version is half the size of the old one.",
       ("half the size", r"half", r"twice|double")),
    _t("Kaum einer hat sich beschwert.", "Hardly anyone complained.",
       ("hardly anyone", r"hardly|barely|scarcely|almost no|few|almost nobody", r"everyone|everybody|many")),
    _t("Fast jeder zweite Kunde zahlt zu spät.", "Almost every second customer pays late.",
       ("almost", r"almost|nearly"), ("every second", r"every second|every other|half|one in two")),
    _t("Die Besprechung findet nicht heute statt, sondern morgen.", "The meeting is not today but tomorrow.",
       ("tomorrow", r"tomorrow"), ("not today", r"(not|n't)\b.{0,25}\btoday")),
    _t("Bist du sicher, dass die Zahlen stimmen?", "Are you sure the figures are correct?",
       ("a question", r"\?\s*$", r"^(yes|no|sure|of course|i am)\b")),
)
# fmt: on


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "´": "'"})


@dataclass(frozen=True)
class Verdict:
    trap: Trap
    translation: str
    lost: tuple[str, ...]  # what of the facts the translation lost (empty: all kept)

    @property
    def kept(self) -> bool:
        return not self.lost


def check(trap: Trap, translation: str) -> Verdict:
    text = " ".join(translation.translate(_APOSTROPHES).split())
    lost = []
    for fact in trap.facts:
        if not re.search(fact.must, text, re.IGNORECASE):
            lost.append(f"{fact.what}: missing")
        elif fact.never and re.search(fact.never, text, re.IGNORECASE):
            lost.append(f"{fact.what}: says the opposite")
    return Verdict(trap, translation, tuple(lost))


def facts_kept(verdicts: list[Verdict]) -> float:
    """The share of facts kept, over all traps."""
    total = sum(len(v.trap.facts) for v in verdicts)
    return 1 - sum(len(v.lost) for v in verdicts) / total if total else 1.0
