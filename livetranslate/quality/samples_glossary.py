"""A German recording full of invented names and product terms, its glossary and reference
translations: what the glossary bench and test measure term accuracy on (espeak-ng, like
livetranslate.quality.samples)."""

from __future__ import annotations

from pathlib import Path

from livetranslate.quality.samples import MEETING_VOICES, make_speech

# Each term three times, in different sentences and voices.
TERMS_DE = [
    "Guten Morgen, heute stellt Mirelda Oskavit den neuen Tranovix Hub vor.",
    "Der Tranovix Hub verbindet alle Geräte im Büro mit der Zorvexa Cloud.",
    "Die erste Version hat Quillbrand im letzten Jahr entwickelt.",
    "Mirelda Oskavit leitet das Team in Hamburg seit drei Jahren.",
    "Die Zorvexa Cloud speichert alle Daten verschlüsselt.",
    "Mit dem Kelvaro Fühler messen wir die Temperatur in jedem Raum.",
    "Der Kelvaro Fühler sendet seine Werte jede Minute an den Tranovix Hub.",
    "Dorsin Wexley aus dem Vertrieb kennt alle Preise.",
    "Bitte schickt eure Fragen bis Freitag an Quillbrand.",
    "Dorsin Wexley und Mirelda Oskavit besuchen nächste Woche die Kunden in Wien.",
    "Quillbrand plant außerdem eine App für die Zorvexa Cloud.",
    "Vielen Dank, und jetzt zeigt Dorsin Wexley den Kelvaro Fühler.",
]
TERMS_EN = [
    "Good morning, today Mirelda Oskavit is presenting the new Tranovix Hub.",
    "The Tranovix Hub connects all devices in the office to the Zorvexa Cloud.",
    "Quillbrand developed the first version last year.",
    "Mirelda Oskavit has been leading the team in Hamburg for three years.",
    "The Zorvexa Cloud stores all data encrypted.",
    "With the Kelvaro Probe we measure the temperature in every room.",
    "The Kelvaro Probe sends its values to the Tranovix Hub every minute.",
    "Dorsin Wexley from sales knows all the prices.",
    "Please send your questions to Quillbrand by Friday.",
    "Dorsin Wexley and Mirelda Oskavit are visiting the customers in Vienna next week.",
    "Quillbrand is also planning an app for the Zorvexa Cloud.",
    "Thank you, and now Dorsin Wexley is showing the Kelvaro Probe.",
]
assert len(TERMS_DE) == len(TERMS_EN)

GLOSSARY_TEXT = """\
# Product launch: names are kept as they are
Mirelda Oskavit
Dorsin Wexley
Quillbrand
Tranovix Hub
Zorvexa Cloud
# a product whose English name differs
Kelvaro Fühler = Kelvaro Probe
"""


def make_terms_recording(directory: Path) -> tuple[Path, Path]:
    """(the recording, its glossary file): 12 sentences, 3 voices, pauses of 0.8-1.6 s,
    noise at -45 dBFS; made once, reused after."""
    path, glossary = directory / "de_terms.wav", directory / "de_terms.glossary.txt"
    if not path.exists():
        make_speech(TERMS_DE, path, voices=MEETING_VOICES, pause_s=(0.8, 1.6), noise_dbfs=-45.0, seed=23)
    if not glossary.exists():
        glossary.write_text(GLOSSARY_TEXT, encoding="utf-8")
    return path, glossary
