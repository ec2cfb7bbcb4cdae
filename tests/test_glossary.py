"""A session's glossary: the file format and its limits, the GLOSSARY tensor, what Whisper
and the translator get, and the glossary a stream carries through the stage seam to its
stored session (scripted stages, no server)."""

import numpy as np
import pytest

from livetranslate import glossary
from livetranslate import protocol as P
from livetranslate.glossary import GlossaryError, Term
from livetranslate.quality.evaluation import term_accuracy
from livetranslate.stages.llm import GenerationRequest
from livetranslate.stages.llm.prompts import translation_prompt
from livetranslate.stages.translate import Translator
from livetranslate.stages.whisper import AsrRequest, decode_again, lists_hotwords
from livetranslate.triton import codecs

FILE = """\ufeff# product launch
Mirelda Oskavit
  Tranovix   Hub
# a term with its translation
Kelvaro Fühler = Kelvaro Probe

Zorvexa Cloud
"""


def test_a_hand_written_file_parses_into_terms():
    g = glossary.parse(FILE)
    assert g.terms == (
        Term("Mirelda Oskavit"),
        Term("Tranovix Hub"),
        Term("Kelvaro Fühler", "Kelvaro Probe"),
        Term("Zorvexa Cloud"),
    )
    assert g.pairs()[1:3] == [("Tranovix Hub", "Tranovix Hub"), ("Kelvaro Fühler", "Kelvaro Probe")]
    assert glossary.parse(g.to_text()) == g  # what goes over the wire parses back the same
    assert g.to_list()[2] == {"term": "Kelvaro Fühler", "translation": "Kelvaro Probe"}
    assert not glossary.parse("# only a comment\n\n") and glossary.parse("").terms == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ("\n".join(f"Term{i}" for i in range(glossary.MAX_TERMS + 1)), "more than 200 terms"),
        ("ok\n" + "x" * (glossary.MAX_LINE_CHARS + 1), "line 2 is longer than 200 characters"),
        ("Zorvexa\nzorvexa = Z", "line 2 repeats the term 'zorvexa' of line 1"),
        ("Kelvaro =", "line 1 has nothing after '='"),
        ("= Probe", "line 1 has no term before '='"),
        ("Zor\x07vexa", "line 1 holds a control character"),
        ("x" * (glossary.MAX_BYTES + 1), "larger than 32 KiB"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(text, message):
    with pytest.raises(GlossaryError, match=message):
        glossary.parse(text)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_bytes("Zorvexa\nKelvaro Fühler\n".encode("latin-1"))
    with pytest.raises(GlossaryError, match=r"terms.txt: the glossary is not UTF-8 text: byte 0xfc on line 2"):
        glossary.load(path)
    with pytest.raises(GlossaryError, match="cannot read the glossary"):
        glossary.load(tmp_path / "missing.txt")


def test_whisper_hears_the_first_terms_that_fit():
    g = glossary.parse(FILE)
    assert g.whisper_hint() == "Mirelda Oskavit, Tranovix Hub, Kelvaro Fühler, Zorvexa Cloud"
    assert g.whisper_hint(max_chars=30) == "Mirelda Oskavit, Tranovix Hub"
    many = glossary.parse("\n".join(f"Begriff{i:03d}" for i in range(200)))
    assert len(many.whisper_hint()) <= glossary.MAX_HINT_CHARS


def test_the_translator_gets_only_the_terms_the_sentence_holds():
    g = glossary.parse(FILE + "Ax = Bx\n")
    assert g.relevant("Heute stellt mirelda oskavit den Tranovix Hub vor.").pairs() == [
        ("Mirelda Oskavit", "Mirelda Oskavit"),
        ("Tranovix Hub", "Tranovix Hub"),
    ]
    # misspelled by Whisper, a longer term still matches; a short one only exactly
    assert [t.source for t in g.relevant("Die Sorvexa Cloud und der Kelvaro-Fühler, Axt.").terms] == [
        "Kelvaro Fühler",
        "Zorvexa Cloud",
    ]
    assert not g.relevant("Das Wetter in Berlin ist heute sonnig.")


def test_translation_prompts_carry_the_pairs_and_are_unchanged_without():
    pairs = [("Kelvaro Fühler", "Kelvaro Probe")]
    for family in ("chatml", "llama3"):
        plain = translation_prompt(family, "Der Kelvaro Fühler misst.", "de", "en").text
        with_terms = translation_prompt(family, "Der Kelvaro Fühler misst.", "de", "en", terms=pairs).text
        assert "Glossary" not in plain and "Kelvaro Fühler = Kelvaro Probe\n" in with_terms
        assert (
            with_terms.replace(with_terms[with_terms.index("Glossary") : with_terms.index("Translate into")], "")
            == plain
        )
    fewshot = translation_prompt("fewshot", "Der Kelvaro Fühler misst.", "de", "en", terms=pairs).text
    assert fewshot.endswith("Terms: Kelvaro Fühler = Kelvaro Probe\nGerman: Der Kelvaro Fühler misst.\nEnglish:")
    assert "Terms: Lumora" in fewshot  # a shot shows a base model what the line means
    assert "Terms" not in translation_prompt("fewshot", "Der Kelvaro Fühler misst.", "de", "en").text


def test_the_translator_puts_the_relevant_pairs_in_its_prompt():
    prompts = []

    def generate(request: GenerationRequest) -> str:
        prompts.append(request.prompt)
        return "The Kelvaro Probe measures."

    translator = Translator(generate, "chatml")
    g = glossary.parse(FILE)
    assert translator.translate("Der Kelvaro Fühler misst.", "de", "en", "", g) == "The Kelvaro Probe measures."
    assert "Kelvaro Fühler = Kelvaro Probe" in prompts[0] and "Zorvexa" not in prompts[0]
    translator.translate("Das Wetter ist gut.", "de", "en", "", g)
    assert "Glossary" not in prompts[1]


def test_the_glossary_tensor_round_trips_and_bad_ones_get_a_clear_error():
    g = glossary.parse(FILE)
    tensors = P.SessionOptions("s", glossary=g).to_tensors()
    assert P.SessionOptions.from_tensors(tensors.get, "x").glossary == g
    assert P.SessionOptions.from_tensors(P.SessionOptions("s").to_tensors().get, "x").glossary == glossary.NO_GLOSSARY
    for value, message in [
        (
            np.array(["Zorvexa\nKelvaro Fühler".encode("latin-1")], dtype=np.object_),
            "GLOSSARY: the glossary is not UTF-8",
        ),
        (np.array([b"a", b"b"], dtype=np.object_), "GLOSSARY must be one text"),
        (np.array([b"Kelvaro ="], dtype=np.object_), "GLOSSARY: glossary line 1 has nothing after"),
    ]:
        bad = {**tensors, P.GLOSSARY: value}
        with pytest.raises(P.ProtocolError, match=message):
            P.SessionOptions.from_tensors(bad.get, "x")


def test_the_stages_tensors_carry_the_glossary():
    g = glossary.parse(FILE)
    asr = AsrRequest(np.zeros(160, np.float32), "de", prompt="Vorher.", hotwords=g.whisper_hint())
    assert codecs.asr_request_from(_unbatched(codecs.asr_request_to_tensors(asr))).hotwords == g.whisper_hint()
    asked = codecs.text_request_from(
        codecs.translate_request_to_tensors(codecs.TextRequest("t", "de", "en", "", g)).get
    )
    assert asked.glossary == g
    assert P.GLOSSARY not in codecs.translate_request_to_tensors(codecs.TextRequest("t", "de"))
    from livetranslate.stages.enhance import Piece

    request = codecs.EnhanceRequest(Piece(1, "Hallo", 0.0, 1.0), "de", "en", glossary=g)
    assert codecs.enhance_request_from(codecs.enhance_request_to_tensors(request).get).glossary == g


def _unbatched(tensors):
    return {name: value[0] if value.ndim > 1 else value for name, value in tensors.items()}.get


def test_whisper_hears_terms_before_its_prompt_and_a_readback_is_decoded_again():
    hint = "Mirelda Oskavit, Tranovix Hub, Kelvaro Fühler, Zorvexa Cloud"
    request = AsrRequest(np.zeros(160, np.float32), "de", prompt="Guten Morgen.", hotwords=hint)
    assert request.previous_text() == f"{hint} Guten Morgen."
    assert lists_hotwords("Mirelda Oskavit, Tranovix Hub, Kelvaro Fühler.", hint)
    assert lists_hotwords("Dorsin Wexley, Quillbrand, Zorvexa Cloud", "Dorsin Wexley, Quillbrand, Zorvexa Cloud")
    # terms in a sentence of other words are speech, even as a list
    assert not lists_hotwords("Mit Tranovix Hub für Wind in Bura mit Wexley, Tranovix Hub, Kelvaro Fühler.", hint)
    assert not lists_hotwords("Heute stellt Mirelda Oskavit den neuen Tranovix Hub vor.", hint)
    assert not lists_hotwords("Mirelda Oskavit und Tranovix Hub.", hint)
    assert decode_again(request, "Mirelda Oskavit, Tranovix Hub, Zorvexa Cloud") == AsrRequest(
        request.audio, "de", prompt="", hotwords=""
    )
    # a copied prompt is dropped; the terms stay
    again = decode_again(request, "Guten Morgen. Guten Morgen. Guten Morgen.")
    assert again is not None and again.prompt == "" and again.hotwords == hint
    assert decode_again(request, "Der Tranovix Hub verbindet alle Geräte.") is None
    loop = "Vornin mit Zorvexa aus dem Fettrieb, " * 6  # a loop with terms given: decoded without them
    assert decode_again(request, loop) == AsrRequest(request.audio, "de", prompt="", hotwords="")


def test_term_accuracy_counts_exact_spellings_per_reference_occurrence():
    refs = ["Mirelda Oskavit zeigt den Tranovix Hub.", "Der Tranovix Hub ist neu."]
    hyps = ["Mirelda Oscavit zeigt den Tranovix Hub.", "Der Tranovix Hub ist neu. Tranovix Hub!"]
    score = term_accuracy(["Mirelda Oskavit", "Tranovix Hub"], refs, hyps)
    assert (score["right"], score["expected"], score["accuracy"], score["extra"]) == (2, 3, 0.667, 1)
    assert score["terms"]["Mirelda Oskavit"] == {"expected": 1, "right": 0, "extra": 0}


def test_a_stream_carries_its_glossary_to_whisper_the_translator_enhance_and_the_store(tmp_path):
    from scripted import Clock, ScriptedStages, Speaker, kinds

    from livetranslate.pipeline import Pipeline, PipelineOptions
    from livetranslate.pipeline.streaming import DecodeOptions
    from livetranslate.store import Hub, SessionStore

    class Recording(ScriptedStages):
        def __init__(self, clock):
            super().__init__(clock)
            self.hotwords, self.glossaries, self.enhance_starts = [], [], []

        def whisper(self, request, partial=False):
            self.hotwords.append(request.hotwords)
            return super().whisper(request, partial)

        def translate(self, text, source, target, context="", glossary=None):
            self.glossaries.append(glossary)
            return super().translate(text, source, target, context)

        def enhance(
            self, sequence_id, step, source, target, start, end, check_complete=True, flush=True, glossary=None
        ):
            if start:
                self.enhance_starts.append(glossary)
            return super().enhance(sequence_id, step, source, target, start, end, check_complete, flush)

    clock = Clock()
    stages = Recording(clock)
    store = SessionStore(tmp_path, hub=Hub(), fsync=False)
    pipeline = Pipeline(
        stages, PipelineOptions(decode=DecodeOptions(policy="utterance", lead_in_s=0.0)), store=store, clock=clock
    )
    g = glossary.parse(FILE)
    speaker = Speaker(pipeline, clock, 5, session="launch")
    speaker.options = P.SessionOptions("launch", partials=False, glossary=g).to_tensors()
    speaker.say(1, 2)
    events = speaker.end()
    assert len(kinds(events, P.EventKind.TRANSLATION)) == 2
    assert stages.hotwords and set(stages.hotwords) == {g.whisper_hint()}
    # each transcript's translation gets it (the scripted enhance's own translations do not)
    assert stages.glossaries.count(g) == 2 and stages.enhance_starts == [g]
    assert store.info("launch").glossary == g.to_list()
    pipeline.shutdown()


def test_the_cli_refuses_a_bad_glossary_file_before_connecting(tmp_path):
    from click.testing import CliRunner

    from livetranslate.cli import main

    bad = tmp_path / "terms.txt"
    bad.write_text("Zorvexa\nKelvaro =\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["stream", "--glossary", str(bad), "--url", "127.0.0.1:1", "-"])
    assert result.exit_code == 2 and "line 2 has nothing after '='" in result.output, result.output


def test_only_the_names_hold_in_other_languages():
    from livetranslate.glossary import parse

    g = parse("Zorvexa\nKassenbuch = cash ledger\n")
    assert [t.source for t in g.kept_as_is().terms] == ["Zorvexa"]
