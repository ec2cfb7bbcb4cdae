"""A German meeting recording that sounds more like people than livetranslate.quality.samples: four
voices from two kinds of synthesizer (three MBROLA diphone voices driven by espeak-ng, and SVOX
Pico), a small room's reverb, steady background noise 20 dB below the voices, turn-taking
pauses of 150-500 ms and one speaker who talks on for about half a minute, with numbers, names
and dates; German and English references.

Deterministic: the same lines, voices and seed give the same bytes, so tests and benches can
compare runs. Needs espeak-ng, sox and the Debian packages mbrola, mbrola-de2/-de6/-de7 and
libttspico-utils (contrib and non-free; scripts/setup.sh enables them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile

from livetranslate.audio import resample

RATE_HZ = 16_000
LEAD_S = 1.0  # noise only before the first and after the last word
TURN_PAUSE_S = (0.15, 0.5)  # between sentences: a new speaker takes over, or the same one goes on
JOINED_PAUSE_S = (0.04, 0.1)  # a breath: the speaker runs sentences together
SPEECH_DBFS = -26.0  # RMS of the speech while someone talks
SNR_DB = 20.0
SHORT_S = 30.0  # the CI cut ends in the real pause nearest to this
PICO_VOICE = "pico-de-DE"


@dataclass(frozen=True)
class Speaker:
    name: str
    # "mb-deN": an MBROLA voice through espeak-ng (Debian package mbrola-deN); "pico-de-DE":
    # SVOX Pico's German voice (libttspico-utils)
    voice: str
    speed: int  # espeak-ng: words per minute; Pico: percent of its normal pace
    pitch: int  # espeak-ng: 0-99; Pico: percent of its normal pitch
    gain_db: float  # nearer to or farther from the microphone
    # sox reverb: reverberance %, HF damping %, room scale %, stereo depth %, pre-delay ms,
    # wet gain dB: one small room, each speaker at their own distance
    reverb: tuple[int, int, int, int, int, float]


SPEAKERS = {
    "Katrin": Speaker("Katrin Vogel", "mb-de7", 170, 52, 0.0, (35, 60, 30, 0, 8, -4.0)),
    "Jonas": Speaker("Jonas Becker", "mb-de6", 178, 45, -2.0, (40, 55, 30, 0, 12, -3.0)),
    "Miriam": Speaker("Miriam Yilmaz", PICO_VOICE, 104, 96, -1.0, (30, 65, 30, 0, 6, -5.0)),
    "Stefan": Speaker("Stefan Hofmann", "mb-de2", 168, 40, -3.0, (45, 50, 35, 0, 15, -2.0)),
}


@dataclass(frozen=True)
class Line:
    speaker: str  # a key of SPEAKERS
    de: str  # as a careful transcript writes it: digits, "3. März", "14:30 Uhr"
    en: str
    spoken: str | None = None  # what the synthesizer reads where it would misread `de`
    joined: bool = False  # follows the previous line after a breath only


# A project meeting on Tuesday, 4 March 2025 (the weekdays and dates agree with the calendar).
# fmt: off
MEETING = [
    Line("Katrin", "Guten Morgen zusammen, schön, dass ihr alle da seid.",
         "Good morning, everyone, it's nice that you're all here."),
    Line("Stefan", "Morgen, Katrin.", "Morning, Katrin."),
    Line("Miriam", "Guten Morgen, ich habe Kaffee für alle mitgebracht.",
         "Good morning, I've brought coffee for everyone."),
    Line("Katrin", "Heute ist Dienstag, der 4. März, und wir haben eine volle Tagesordnung.",
         "Today is Tuesday, the 4th of March, and we have a full agenda.",
         "Heute ist Dienstag, der vierte März, und wir haben eine volle Tagesordnung."),
    Line("Katrin", "Jonas, magst du mit dem Stand der Messe in Hannover anfangen?",
         "Jonas, would you like to start with the status of the trade fair in Hanover?"),
    Line("Jonas", "Ja, gerne.", "Yes, gladly."),
    Line("Jonas", "Unser Stand in Halle 12 ist gebucht, er hat 48 Quadratmeter.",
         "Our booth in Hall 12 is booked; it has 48 square meters."),
    Line("Jonas", "Die Messe läuft vom 31. März bis zum 4. April.",
         "The fair runs from the 31st of March to the 4th of April.",
         "Die Messe läuft vom einunddreißigsten März bis zum vierten April."),
    Line("Jonas", "Wir rechnen mit ungefähr 2.000 Besuchern an unserem Stand.",
         "We expect about 2,000 visitors at our booth."),
    Line("Katrin", "Wer von uns ist an welchen Tagen vor Ort?", "Which of us will be there on which days?"),
    Line("Jonas", "Stefan und ich fahren am Sonntag, den 30. März, mit dem Zug hin.",
         "Stefan and I are going there by train on Sunday, the 30th of March.",
         "Stefan und ich fahren am Sonntag, den dreißigsten März, mit dem Zug hin."),
    Line("Stefan", "Genau, der Zug fährt um 7:45 Uhr in Frankfurt ab.",
         "Exactly, the train leaves Frankfurt at 7:45 in the morning.",
         "Genau, der Zug fährt um sieben Uhr fünfundvierzig in Frankfurt ab."),
    Line("Stefan", "Die Vorführgeräte schicke ich schon eine Woche vorher mit der Spedition Brandt.",
         "I'm sending the demonstration units a week ahead with the Brandt haulage company."),
    Line("Katrin", "Danke. Miriam, wie sehen die Zahlen für das erste Quartal aus?",
         "Thank you. Miriam, what do the figures for the first quarter look like?"),
    # Miriam talks on for half a minute, sentences joined by a breath; after a pause, on again.
    Line("Miriam", "Insgesamt sieht es gut aus, wir haben im ersten Quartal 1,8 Millionen Euro Umsatz gemacht.",
         "Overall it looks good: we made 1.8 million euros in revenue in the first quarter."),
    Line("Miriam", "Das sind 12 % mehr als im gleichen Zeitraum 2024.",
         "That is 12% more than in the same period in 2024.",
         "Das sind zwölf Prozent mehr als im gleichen Zeitraum 2024.", joined=True),
    Line("Miriam", "Am stärksten gewachsen ist der Bereich Wärmepumpen mit einem Plus von 23 Prozent.",
         "Heat pumps grew the most, with an increase of 23 percent.", joined=True),
    Line("Miriam", "Die Kosten sind dagegen nur um 3,5 Prozent gestiegen, vor allem wegen der höheren Mieten.",
         "Costs, on the other hand, rose by only 3.5 percent, mainly because of higher rents.", joined=True),
    Line("Miriam", "Der Gewinn vor Steuern liegt damit bei 214.000 Euro.",
         "Profit before tax therefore comes to 214,000 euros.", joined=True),
    Line("Miriam", "Ein Problem sind allerdings die offenen Rechnungen, im Moment sind es 37 Stück.",
         "One problem, however, is the unpaid invoices: at the moment there are 37 of them.", joined=True),
    Line("Miriam", "Die größte ist von der Firma Lindqvist aus Hamburg über 48.500 Euro, "
                   "und sie ist seit dem 15. Januar fällig.",
         "The largest is from the Lindqvist company in Hamburg for 48,500 euros, "
         "and it has been due since the 15th of January.",
         "Die größte ist von der Firma Lindqvist aus Hamburg über 48.500 Euro, "
         "und sie ist seit dem fünfzehnten Januar fällig."),
    Line("Miriam", "Ich habe dort schon zweimal angerufen, aber bisher keine Antwort bekommen.",
         "I have already called them twice, but I haven't had an answer so far.", joined=True),
    Line("Katrin", "Das ist ärgerlich. Jonas, kennst du dort jemanden?",
         "That's annoying. Jonas, do you know anyone there?"),
    Line("Jonas", "Ja, die Firma ist seit 1997 unser Kunde.",
         "Yes, the company has been our customer since 1997.",
         "Ja, die Firma ist seit neunzehnhundertsiebenundneunzig unser Kunde."),
    Line("Jonas", "Ich kenne den Einkaufsleiter, Herrn Petersen, und rufe ihn heute Nachmittag an.",
         "I know the head of purchasing, Mr. Petersen, and I'll call him this afternoon."),
    Line("Miriam", "Danke, das wäre eine große Hilfe.", "Thanks, that would be a big help."),
    Line("Katrin", "Der nächste Punkt ist die Umstellung auf das neue Buchungssystem.",
         "The next item is the switch to the new booking system."),
    Line("Stefan", "Da sind wir leider etwas im Verzug.", "Unfortunately, we're a little behind schedule there."),
    Line("Stefan", "Die Datenübernahme hat drei Tage länger gedauert als geplant, "
                   "weil 1.200 alte Kundendatensätze doppelt waren.",
         "The data migration took three days longer than planned, because 1,200 old customer records "
         "were duplicates."),
    Line("Stefan", "Der neue Termin für den Start ist Montag, der 12. Mai 2025.",
         "The new start date is Monday, the 12th of May 2025.",
         "Der neue Termin für den Start ist Montag, der zwölfte Mai 2025."),
    Line("Katrin", "Brauchst du dafür noch Unterstützung von außen?", "Do you need any outside support for that?"),
    Line("Stefan", "Vielleicht zwei Tage von unserem Berater, Herrn Krause, das kostet etwa 2.400 Euro.",
         "Perhaps two days from our consultant, Mr. Krause; that costs about 2,400 euros."),
    Line("Katrin", "Das ist in Ordnung, das Budget dafür haben wir.", "That's fine, we have the budget for it."),
    Line("Katrin", "Dann noch zur Personalplanung.", "Then, staff planning."),
    Line("Miriam", "Frau Schulte geht ab dem 1. Juni für ungefähr ein Jahr in Elternzeit.",
         "Ms. Schulte is going on parental leave from the 1st of June for about a year.",
         "Frau Schulte geht ab dem ersten Juni für ungefähr ein Jahr in Elternzeit."),
    Line("Miriam", "Die Stelle schreiben wir diese Woche aus, die Bewerbungsfrist endet am 30.04.",
         "We're advertising the position this week; the application deadline is the 30th of April.",
         "Die Stelle schreiben wir diese Woche aus, die Bewerbungsfrist endet am dreißigsten vierten."),
    Line("Jonas", "Kann die Vertretung auch die Anfragen aus Österreich übernehmen?",
         "Can the replacement also take over the inquiries from Austria?"),
    Line("Miriam", "Ja, das steht so in der Ausschreibung, mit Schwerpunkt Wien und Graz.",
         "Yes, that's in the job posting, with a focus on Vienna and Graz."),
    Line("Katrin", "Prima, gibt es sonst noch etwas?", "Great, is there anything else?"),
    Line("Stefan", "Nur kurz, am Freitag ab 18 Uhr wird der Server im Keller gewartet, "
                   "dann ist das Netzwerk etwa zwei Stunden weg.",
         "Just briefly: on Friday from 6 p.m. the server in the basement is being serviced, "
         "so the network will be down for about two hours.",
         "Nur kurz, am Freitag ab achtzehn Uhr wird der Server im Keller gewartet, "
         "dann ist das Netzwerk etwa zwei Stunden weg."),
    Line("Jonas", "Und ich erinnere an die Weihnachtsfeier, nein, Entschuldigung, an das Sommerfest am 27. Juni.",
         "And a reminder about the Christmas party, no, sorry, the summer party on the 27th of June.",
         "Und ich erinnere an die Weihnachtsfeier, nein, Entschuldigung, an das Sommerfest am "
         "siebenundzwanzigsten Juni."),
    Line("Katrin", "Danke euch, das nächste Treffen ist am 18. März um 10:30 Uhr im großen Besprechungsraum.",
         "Thank you all; the next meeting is on the 18th of March at 10:30 in the large meeting room.",
         "Danke euch, das nächste Treffen ist am achtzehnten März um zehn Uhr dreißig im großen Besprechungsraum."),
    Line("Katrin", "Schönen Tag noch und bis dann.", "Have a nice day, and see you then."),
]
# fmt: on


@dataclass(frozen=True)
class SpokenUtterance:
    text_de: str
    text_en: str
    start_s: float
    end_s: float
    speaker: str
    voice: str


def _require(program: str, package: str) -> None:
    if shutil.which(program) is None:
        raise RuntimeError(f"{program} is not installed (apt-get install {package}, or scripts/setup.sh)")


def _synthesizer(voice: str, speed: int, pitch: int, text: str, out: str) -> tuple[list[str], str]:
    """(command line, the Debian packages it needs)."""
    if voice == PICO_VOICE:
        if "<" in text:
            raise ValueError(f"Pico reads '<' as markup: {text!r}")
        return (
            [
                "pico2wave",
                "-l",
                voice.removeprefix("pico-"),
                "-w",
                out,
                f"<speed level='{speed}'><pitch level='{pitch}'>{text}</pitch></speed>",
            ],
            "libttspico-utils",
        )
    # amplitude 70: the MBROLA voices clip ("Saturation") at espeak-ng's default of 100
    return (
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", "70", "-w", out, text],
        "espeak-ng mbrola mbrola-" + voice.removeprefix("mb-"),
    )


def synthesize(text: str, speaker: Speaker, speed: int, pitch: int) -> np.ndarray:
    """One sentence as float32 at RATE_HZ, leading and trailing silence cut off."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "speech.wav")
        command, packages = _synthesizer(speaker.voice, speed, pitch, text, out)
        _require(command[0], packages)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not Path(out).exists() or Path(out).stat().st_size == 0:
            raise RuntimeError(
                f"{command[0]} could not speak with {speaker.voice} (apt-get install {packages}, "
                f"or scripts/setup.sh): {done.stderr.strip()[-300:]}"
            )
        samples, rate = soundfile.read(out, dtype="float32")
    samples = resample(samples, rate, RATE_HZ)
    loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 10 ** (-40 / 20))
    margin = int(0.01 * RATE_HZ)
    return samples[max(0, loud[0] - margin) : loud[-1] + margin]


def room(track: np.ndarray, reverb: tuple) -> np.ndarray:
    """The track as heard in the room (sox reverb, dry and wet), same length."""
    _require("sox", "sox")
    with tempfile.TemporaryDirectory() as folder:
        dry, wet = Path(folder) / "dry.wav", Path(folder) / "wet.wav"
        soundfile.write(str(dry), track, RATE_HZ, subtype="FLOAT")
        # -R: repeatable; float output, no dither: the same input gives the same samples
        subprocess.run(
            [
                "sox",
                "-R",
                "-D",
                "-V1",
                str(dry),
                "-e",
                "floating-point",
                "-b",
                "32",
                str(wet),
                "reverb",
                *map(str, reverb),
            ],
            check=True,
            capture_output=True,
        )
        out, _ = soundfile.read(str(wet), dtype="float32")
    return out[: len(track)]


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Steady 1/f noise (a room's ventilation and hum of machines), unit RMS."""
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    freqs = np.fft.rfftfreq(n, 1 / RATE_HZ)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def rms_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(samples, np.float64) ** 2) + 1e-20))


def speech_mask(utterances: list[SpokenUtterance], n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for u in utterances:
        mask[int(u.start_s * RATE_HZ) : int(u.end_s * RATE_HZ)] = True
    return mask


def make_recording(lines: list[Line], path: Path, *, seed: int = 0, snr_db: float = SNR_DB) -> list[SpokenUtterance]:
    """Writes the meeting to `path` (16 kHz, 16-bit WAV) and its reference next to it
    (`<stem>.json`); returns the reference."""
    rng = np.random.default_rng(seed)
    names = sorted({line.speaker for line in lines})
    clips, utterances, t = [], [], LEAD_S
    for i, line in enumerate(lines):
        speaker = SPEAKERS[line.speaker]
        if i:
            t += rng.uniform(*(JOINED_PAUSE_S if line.joined else TURN_PAUSE_S))
        # a person never says two sentences quite alike
        speed = int(round(speaker.speed * rng.uniform(0.95, 1.05)))
        pitch = speaker.pitch + int(rng.integers(-4, 5))
        clip = synthesize(line.spoken or line.de, speaker, speed, pitch)
        # the voices come out of the synthesizer at levels up to 8 dB apart; people in one
        # meeting differ by their distance to the microphone
        clip *= 10 ** ((SPEECH_DBFS + speaker.gain_db - rms_db(clip)) / 20)
        start = int(round(t * RATE_HZ))
        clips.append((line.speaker, start, clip))
        utterances.append(
            SpokenUtterance(
                line.de,
                line.en,
                round(start / RATE_HZ, 3),
                round((start + len(clip)) / RATE_HZ, 3),
                speaker.name,
                speaker.voice,
            )
        )
        t = (start + len(clip)) / RATE_HZ
    n = int(round((t + LEAD_S) * RATE_HZ))
    speech = np.zeros(n, np.float32)
    for name in names:
        track = np.zeros(n, np.float32)
        for who, start, clip in clips:
            if who == name:
                track[start : start + len(clip)] += clip
        speech += room(track, SPEAKERS[name].reverb)
    mask = speech_mask(utterances, n)
    speech *= 10 ** ((SPEECH_DBFS - rms_db(speech[mask])) / 20)
    noise = pink_noise(n, rng) * 10 ** ((SPEECH_DBFS - snr_db) / 20)
    audio = speech + noise
    peak = np.abs(audio).max()
    if peak > 0.9:  # keeps the ratio, never clips
        audio *= 0.9 / peak
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, RATE_HZ, subtype="PCM_16")
    write_reference(path, utterances)
    return utterances


def cut(
    source: Path, utterances: list[SpokenUtterance], lines: list[Line], path: Path, seconds: float = SHORT_S
) -> list[SpokenUtterance]:
    """The start of a recording up to the middle of the real pause (not a breath) nearest to
    `seconds`, then the noise alone from before its first word (as long as its lead-in, cross-
    faded over 10 ms), so that the cut too ends in quiet; and its reference."""
    middles = {
        i: (utterances[i].end_s + utterances[i + 1].start_s) / 2
        for i in range(len(utterances) - 1)
        if not lines[i + 1].joined
    }
    last = min(middles, key=lambda i: abs(middles[i] - seconds))
    audio, rate = soundfile.read(str(source), dtype="float32")
    at, fade = int(round(middles[last] * rate)), int(0.01 * rate)
    head, tail = audio[:at].copy(), audio[: int((LEAD_S - 0.05) * rate)]
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    head[-fade:] = head[-fade:] * (1 - ramp) + tail[:fade] * ramp
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.concatenate([head, tail[fade:]]), rate, subtype="PCM_16")
    kept = utterances[: last + 1]
    write_reference(path, kept)
    return kept


def reference_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".json")


def write_reference(audio_path: Path, utterances: list[SpokenUtterance]) -> None:
    reference_path(audio_path).write_text(
        json.dumps([asdict(u) for u in utterances], ensure_ascii=False, indent=1), encoding="utf-8"
    )


def load_reference(audio_path: Path) -> list[SpokenUtterance]:
    return [SpokenUtterance(**u) for u in json.loads(reference_path(audio_path).read_text(encoding="utf-8"))]


def _says(path: Path, lines: list[Line]) -> bool:
    """Does the recording's reference hold these lines in these voices? (A cached file made
    from an older text is made again.)"""
    said = [(u.text_de, u.text_en, u.voice) for u in load_reference(path)]
    return said == [(line.de, line.en, SPEAKERS[line.speaker].voice) for line in lines]


def make_natural(directory: Path, seed: int = 31) -> dict[str, Path]:
    """The natural meeting (about 3 minutes) and its first half minute for CI, each with its
    reference JSON; made once, reused after."""
    files = {"natural": directory / "de_natural_meeting.wav", "natural_short": directory / "de_natural_short.wav"}
    made = all(p.exists() and reference_path(p).exists() for p in files.values())
    if not made or not _says(files["natural"], MEETING):
        utterances = make_recording(MEETING, files["natural"], seed=seed)
        cut(files["natural"], utterances, MEETING, files["natural_short"])
    return files


if __name__ == "__main__":  # python -m livetranslate.quality.samples_natural [folder]
    import sys

    for name, file in make_natural(Path(sys.argv[1] if len(sys.argv) > 1 else "samples")).items():
        print(name, file)
