import pytest

from livetranslate.audio import pcm16_to_float, read_audio, resample
from livetranslate.quality.samples import load_reference
from livetranslate.stages.whisper import AsrRequest, SpeechFilter, Transcription, create_engine, is_known_hallucination


def t(text, no_speech=0.1, logprob=-0.3, ratio=1.2):
    return Transcription(text, "de", no_speech, logprob, ratio)


def test_speech_filter():
    f = SpeechFilter()
    assert f.keep(t("Heute sprechen wir über das Projekt."))
    assert not f.keep(t("   "))
    assert not f.keep(t("..."))
    assert not f.keep(t("Hallo", no_speech=0.9, logprob=-1.5))  # silence, unsure
    assert f.keep(t("Hallo", no_speech=0.9, logprob=-0.2))  # confident speech
    assert f.keep(t("Ja, genau.", no_speech=0.68, logprob=-0.9))
    assert not f.keep(t("ja ja ja ja ja ja ja ja ja ja", ratio=3.5))
    assert not f.keep(t("Untertitel im Auftrag des ZDF, 2021"))


def test_known_hallucinations_do_not_eat_real_sentences():
    assert is_known_hallucination("Vielen Dank fürs Zuschauen!")
    assert is_known_hallucination("Untertitel der Amara.org-Community")
    assert not is_known_hallucination("Vielen Dank für Ihre Aufmerksamkeit und bis zum nächsten Mal.")
    assert not is_known_hallucination("Das Zuschauen macht Spaß.")


def test_unknown_engine():
    with pytest.raises(ValueError, match="unknown Whisper engine"):
        create_engine("nope", ".")


def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="models fetch"):
        create_engine("ctranslate2", tmp_path)


@pytest.mark.slow
def test_ctranslate2_engine_transcribes_german(whisper_engine, audio_files):
    pcm, rate = read_audio(audio_files["speech"])
    x = resample(pcm16_to_float(pcm), rate)
    ref = load_reference(audio_files["speech"])[1]  # "Heute sprechen wir über das neue Projekt ..."
    clip = x[int(ref.start_s * 16000) - 3200 : int(ref.end_s * 16000) + 3200]
    [result] = whisper_engine.transcribe([AsrRequest(clip, "de")])
    assert result.language == "de"
    assert "Projekt" in result.text and "Zeitplan" in result.text
    assert result.no_speech_prob < 0.5 and result.avg_logprob > -1.0
    silence = 0.0 * clip
    [quiet] = whisper_engine.transcribe([AsrRequest(silence, "de")])
    assert not SpeechFilter().keep(quiet)


@pytest.mark.slow
def test_a_batch_of_streams_at_different_points_decodes_like_each_alone(whisper_engine, audio_files):
    """Requests of several streams meet in one batch with different amounts of previous
    text and different committed prefixes (CTranslate2 needs <|startoftranscript|> at one
    position per generate call: seen failing live with two streams)."""
    pcm, rate = read_audio(audio_files["speech"])
    x = resample(pcm16_to_float(pcm), rate)
    refs = load_reference(audio_files["speech"])

    def clip(i, j):
        return x[int(refs[i].start_s * 16000) - 3200 : int(refs[j].end_s * 16000) + 3200]

    requests = [
        AsrRequest(clip(1, 1), "de", beam_size=5),
        AsrRequest(
            clip(0, 1),
            "de",
            prompt="Eine lange Einleitung vorher, mit vielen Worten darin.",
            prefix=refs[0].text,
            beam_size=5,
        ),
        AsrRequest(clip(3, 4), "de", prompt="Kurz.", beam_size=5),
        AsrRequest(clip(1, 1), "de", prompt="Eine lange Einleitung vorher, mit vielen Worten darin.", beam_size=5),
    ]
    together = whisper_engine.transcribe(requests)
    alone = [whisper_engine.transcribe([r])[0] for r in requests]
    assert [r.text for r in together] == [r.text for r in alone]
    assert "Projekt" in together[0].text and "Projekt" in together[1].text and "Kunden" in together[2].text
    assert "Guten Morgen" not in together[1].text  # the prefix is not repeated


def test_prompt_copy_detection():
    from livetranslate.stages.whisper import copies_prompt

    prompt = "Hallo zusammen, ich eröffne jetzt die Sitzung."
    assert copies_prompt("Ich eröffne jetzt die Sitzung. Ich eröffne jetzt die Sitzung.", prompt)
    assert copies_prompt("ja ja ja ja ja ja ja ja ja ja ja ja ja ja ja ja ja ja", "Gut.")
    assert not copies_prompt("Als erstes schauen wir uns die Zahlen vom letzten Monat an.", prompt)
    assert not copies_prompt("Ich eröffne die Sitzung.", "")


@pytest.mark.parametrize(
    "previous, new, expected",
    [
        ("Wir treffen uns am Montag.", "Montag. Dann sprechen wir.", "Dann sprechen wir."),
        ("Das ist gut", "ist gut, danke schön", "danke schön"),
        ("Das ist gut.", "Heute ist Montag.", "Heute ist Montag."),
        ("Ja.", "Ja.", ""),
        ("", "Hallo.", "Hallo."),
    ],
)
def test_boundary_dedupe(previous, new, expected):
    from livetranslate.stages.whisper import dedupe_boundary

    assert dedupe_boundary(previous, new) == expected


def test_encoder_window_is_at_least_20_s_and_5_s_past_the_audio_and_at_most_30_s():
    from livetranslate.stages.whisper.ctranslate2 import encoder_frames

    assert encoder_frames(300, 20.0) == 2000  # a 3 s utterance: 20 s
    assert encoder_frames(1400, 20.0) == 1900 + 100  # 14 s: still 20 s
    assert encoder_frames(1700, 20.0) == 2200  # 17 s: 5 s of silence after it
    assert encoder_frames(2800, 20.0) == 3000  # never past Whisper's 30 s
    assert encoder_frames(300, 30.0) == 3000  # Whisper's own window


def test_only_requests_with_context_get_the_shorter_encoder_window():
    import numpy as np

    from livetranslate.stages.whisper import AsrOptions
    from livetranslate.stages.whisper.ctranslate2 import CTranslate2Engine

    engine = object.__new__(CTranslate2Engine)  # no model needed for the rule
    engine.options = AsrOptions()
    audio = np.zeros(16000, np.float32)
    assert engine._min_window_s(AsrRequest(audio, "de", prefix="Guten Morgen.")) == 15.0
    assert engine._min_window_s(AsrRequest(audio, "de", prompt="Guten Morgen.")) == 30.0
