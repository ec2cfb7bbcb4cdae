"""llama.cpp's prompt evaluated in pieces (background work that pauses for urgent work): the
same text comes out as without, the pause hook runs between the pieces, and a hook that
raises drops the call before its prompt is done."""

import pytest

from livetranslate.stages.llm import GenerationRequest, create_engine
from livetranslate.stages.llm.llamacpp import PREFILL_PIECE
from livetranslate.stages.llm.prompts import translation_prompt
from livetranslate.weights.catalog import resolve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    return create_engine("llama_cpp", str(resolve("gemma3-270m")))  # no prompt cache: each prompt is evaluated


def test_a_prompt_evaluated_in_pieces_gives_the_same_text(engine):
    prompt = translation_prompt(
        "fewshot",
        "Wir haben zu wenig Leute im Support, und das schon seit Wochen.",
        "de",
        "en",
        context="Anna stellt die Zahlen vor. " * 6,
    )
    request = GenerationRequest(prompt.text, max_tokens=24, stop=prompt.stop)
    engine.llm.reset()
    whole = "".join(engine.generate(request))
    calls = []
    engine.llm.reset()
    engine.prefill(prompt.text, lambda: calls.append(engine.llm.n_tokens))
    pieces = "".join(engine.generate(request))
    assert pieces == whole and whole.strip()
    n = len(engine.llm.tokenize(prompt.text.encode(), add_bos=True, special=True))
    assert len(calls) >= (n - 1) // PREFILL_PIECE - 1
    assert calls == sorted(calls) and calls[1] - calls[0] == PREFILL_PIECE


def test_a_yes_probability_after_a_prefill_is_the_same(engine):
    prompt = "Text: Kannst du mir die Datei schicken?\nComplete thought:"
    engine.llm.reset()
    alone = engine.yes_probability(prompt)
    engine.llm.reset()
    engine.prefill(prompt, lambda: None)
    # pieces of another size take other matrix kernels: the float sums differ in the last digits
    assert engine.yes_probability(prompt) == pytest.approx(alone, abs=0.02)


def test_a_hook_that_raises_stops_the_evaluation(engine):
    class Dropped(Exception):
        pass

    def drop():
        raise Dropped()

    engine.llm.reset()
    prompt = "Anna stellt die Zahlen vor. " * 20
    with pytest.raises(Dropped):
        engine.prefill(prompt, drop)
    assert engine.llm.n_tokens == PREFILL_PIECE + 1 or engine.llm.n_tokens <= 2 * PREFILL_PIECE
