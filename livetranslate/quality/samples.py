"""German test and demo audio spoken by espeak-ng, with reference texts.

Deterministic: the same sentences, voices, pauses and noise seed give the same file, so
tests and benches can compare runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

ESPEAK_RATE_HZ = 22_050

SENTENCES_DE = [
    "Guten Morgen, willkommen zu unserer wöchentlichen Besprechung.",
    "Heute sprechen wir über das neue Projekt und den Zeitplan.",
    "Das Wetter in Berlin ist heute sonnig und warm.",
    "Wir brauchen mehr Zeit für die Entwicklung der Software.",
    "Die Kunden sind mit der neuen Version sehr zufrieden.",
    "Können wir das Treffen auf nächsten Dienstag verschieben?",
    "Ich habe den Bericht gestern Abend an alle geschickt.",
    "Vielen Dank für Ihre Aufmerksamkeit und bis zum nächsten Mal.",
]

# A longer meeting for benches: different sentences, several voices, varied pauses.
MEETING_DE = [
    "Hallo zusammen, ich eröffne jetzt die Sitzung.",
    "Als erstes schauen wir uns die Zahlen vom letzten Monat an.",
    "Der Umsatz ist um zehn Prozent gestiegen.",
    "Die Kosten für die Server sind leider auch gestiegen.",
    "Wir sollten prüfen, ob wir einen günstigeren Anbieter finden.",
    "Maria, kannst du das bis Freitag übernehmen?",
    "Ja, das mache ich gerne.",
    "Der zweite Punkt auf der Tagesordnung ist die neue Webseite.",
    "Das Design ist fast fertig, aber die Texte fehlen noch.",
    "Thomas schreibt die Texte auf Deutsch und auf Englisch.",
    "Wann soll die Webseite online gehen?",
    "Wir planen den Start für Anfang März.",
    "Gibt es dazu noch Fragen?",
    "Ich habe eine Frage zur Sicherheit der Kundendaten.",
    "Alle Daten werden verschlüsselt auf unseren eigenen Servern gespeichert.",
    "Das klingt gut, vielen Dank für die Erklärung.",
    "Der dritte Punkt betrifft das Sommerfest.",
    "Wir haben einen Raum im Hotel am See reserviert.",
    "Das Essen wird von einem kleinen Restaurant aus der Stadt geliefert.",
    "Bitte meldet euch bis Ende der Woche an.",
    "Als nächstes besprechen wir die Urlaubsplanung.",
    "Im August sind viele Kollegen gleichzeitig im Urlaub.",
    "Wir müssen sicherstellen, dass immer jemand erreichbar ist.",
    "Ich schlage vor, dass wir eine Liste im Wiki anlegen.",
    "Jeder trägt dort seine Urlaubstage ein.",
    "Die Teamleiter prüfen dann, ob es Lücken gibt.",
    "Zum Schluss noch eine gute Nachricht.",
    "Wir haben zwei neue Kollegen im Vertrieb eingestellt.",
    "Sie fangen am ersten Oktober bei uns an.",
    "Bitte helft ihnen in den ersten Wochen.",
    "Die nächste Sitzung findet am Montag um neun Uhr statt.",
    "Dann sprechen wir über das Budget für das nächste Jahr.",
    "Hat noch jemand etwas zu sagen?",
    "Nein, dann beende ich die Sitzung.",
    "Ich wünsche allen einen schönen Tag.",
    "Bis nächste Woche und vielen Dank.",
]
MEETING_VOICES = ("de", "de+f2", "de+m3")

# Reference translations (written by hand) for scoring the translators.
SENTENCES_EN = [
    "Good morning, welcome to our weekly meeting.",
    "Today we will talk about the new project and the schedule.",
    "The weather in Berlin is sunny and warm today.",
    "We need more time for the development of the software.",
    "The customers are very satisfied with the new version.",
    "Can we move the meeting to next Tuesday?",
    "I sent the report to everyone yesterday evening.",
    "Thank you very much for your attention and see you next time.",
]
MEETING_EN = [
    "Hello everyone, I am now opening the meeting.",
    "First, let's look at the figures from last month.",
    "Revenue has increased by ten percent.",
    "Unfortunately, the costs for the servers have also increased.",
    "We should check whether we can find a cheaper provider.",
    "Maria, can you take care of that by Friday?",
    "Yes, I'll gladly do that.",
    "The second item on the agenda is the new website.",
    "The design is almost finished, but the texts are still missing.",
    "Thomas is writing the texts in German and in English.",
    "When should the website go online?",
    "We are planning the launch for the beginning of March.",
    "Are there any more questions about this?",
    "I have a question about the security of the customer data.",
    "All data is stored encrypted on our own servers.",
    "That sounds good, thank you for the explanation.",
    "The third item concerns the summer party.",
    "We have reserved a room in the hotel by the lake.",
    "The food will be delivered by a small restaurant from the city.",
    "Please sign up by the end of the week.",
    "Next, we will discuss the vacation planning.",
    "In August, many colleagues are on vacation at the same time.",
    "We have to make sure that someone is always reachable.",
    "I suggest that we create a list in the wiki.",
    "Everyone enters their vacation days there.",
    "The team leaders then check whether there are any gaps.",
    "Finally, one more piece of good news.",
    "We have hired two new colleagues in sales.",
    "They start with us on the first of October.",
    "Please help them in the first few weeks.",
    "The next meeting will take place on Monday at nine o'clock.",
    "Then we will talk about the budget for next year.",
    "Does anyone else have anything to say?",
    "No, then I will close the meeting.",
    "I wish everyone a nice day.",
    "See you next week and thank you very much.",
]
assert len(MEETING_EN) == len(MEETING_DE) and len(SENTENCES_EN) == len(SENTENCES_DE)


@dataclass(frozen=True)
class Utterance:
    text: str
    start_s: float
    end_s: float


def espeak(text: str, voice: str = "de", speed: int = 150) -> np.ndarray:
    """One utterance as float32 at ESPEAK_RATE_HZ."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", tmp.name, text],
            check=True,
            capture_output=True,
        )
        samples, rate = soundfile.read(tmp.name, dtype="float32")
    assert rate == ESPEAK_RATE_HZ, rate
    return samples


def make_speech(
    sentences: list[str],
    path: Path,
    *,
    voices: tuple[str, ...] = ("de",),
    pause_s: float | tuple[float, float] = 1.0,
    lead_s: float = 0.5,
    noise_dbfs: float = -50.0,
    seed: int = 0,
) -> list[Utterance]:
    """Writes the sentences with pauses and low noise to `path` (22.05 kHz WAV); writes
    the reference next to it as `<stem>.json` and returns it."""
    rng = np.random.default_rng(seed)
    pieces, utterances, t = [np.zeros(int(lead_s * ESPEAK_RATE_HZ), np.float32)], [], lead_s
    for i, sentence in enumerate(sentences):
        speech = 0.6 * espeak(sentence, voices[i % len(voices)])
        utterances.append(Utterance(sentence, round(t, 3), round(t + len(speech) / ESPEAK_RATE_HZ, 3)))
        pause = rng.uniform(*pause_s) if isinstance(pause_s, tuple) else pause_s
        pieces += [speech, np.zeros(int(pause * ESPEAK_RATE_HZ), np.float32)]
        t += len(speech) / ESPEAK_RATE_HZ + pause
    audio = np.concatenate(pieces)
    audio += rng.normal(0, 10 ** (noise_dbfs / 20), len(audio)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, ESPEAK_RATE_HZ, subtype="PCM_16")
    reference_path(path).write_text(json.dumps([u.__dict__ for u in utterances], ensure_ascii=False, indent=1))
    return utterances


def make_silence(path: Path, seconds: float = 6.0, noise_dbfs: float = -60.0, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 10 ** (noise_dbfs / 20), int(seconds * ESPEAK_RATE_HZ)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, ESPEAK_RATE_HZ, subtype="PCM_16")


def make_noise(path: Path, seed: int = 3) -> None:
    """Loud non-speech the VAD does take for speech: bursts of white and brown noise and a
    warbling hum, 1.2 s each with pauses. Whisper must say nothing on it."""
    rng = np.random.default_rng(seed)
    rate, n = ESPEAK_RATE_HZ, int(1.2 * ESPEAK_RATE_HZ)
    t = np.arange(n) / rate
    brown = np.cumsum(rng.normal(0, 1, n))
    brown -= np.convolve(brown, np.ones(400) / 400, "same")  # no drift
    bursts = [
        rng.normal(0, 0.1, n),
        0.3 * brown / np.abs(brown).max(),
        0.2 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t)),
    ]
    gap = np.zeros(int(0.8 * rate))
    audio = np.concatenate([x for b in bursts * 2 for x in (b, gap)]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, rate, subtype="PCM_16")


def reference_path(audio_path: Path) -> Path:
    return audio_path.with_suffix(".json")


def load_reference(audio_path: Path) -> list[Utterance]:
    return [Utterance(**u) for u in json.loads(reference_path(audio_path).read_text())]


def make_all(directory: Path) -> dict[str, Path]:
    """The standard files tests and the demo use; made once, reused after."""
    files = {
        "speech": directory / "de_meeting.wav",
        "speech_b": directory / "de_weather.wav",
        "silence": directory / "silence.wav",
        "noise": directory / "noise.wav",
    }
    if not files["speech"].exists():
        make_speech(SENTENCES_DE[:5], files["speech"])
    if not files["speech_b"].exists():
        make_speech(SENTENCES_DE[5:], files["speech_b"], voices=("de",), seed=2)
    if not files["silence"].exists():
        make_silence(files["silence"])
    if not files["noise"].exists():
        make_noise(files["noise"])
    return files


def make_bench_recording(directory: Path) -> Path:
    """The streaming bench recording: 44 sentences, over 3 minutes, 3 voices,
    pauses of 0.6-2.0 s, noise at -45 dBFS."""
    path = directory / "de_meeting_3min.wav"
    if not path.exists():
        make_speech(
            MEETING_DE + SENTENCES_DE, path, voices=MEETING_VOICES, pause_s=(0.6, 2.0), noise_dbfs=-45.0, seed=11
        )
    return path


def make_meeting(directory: Path) -> Path:
    """The bench recording: 36 sentences, 3 voices, pauses of 0.6-2.0 s, noise at -45 dBFS."""
    path = directory / "de_meeting_long.wav"
    if not path.exists():
        make_speech(MEETING_DE, path, voices=MEETING_VOICES, pause_s=(0.6, 2.0), noise_dbfs=-45.0, seed=7)
    return path
