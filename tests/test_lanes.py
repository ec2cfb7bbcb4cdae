"""The llm's lanes (livetranslate.stages.llm.lanes) with fake engines: urgent work never waits for
background work, background work pauses between tokens while urgent work runs (bounded),
and the backlog is bounded. Also the interim text of a translation as it is generated
(livetranslate.stages.translate.Interim) and the choice of the small model under load
(livetranslate.pipeline.guards.TranslationLoad)."""

import concurrent.futures
import threading
import time

import pytest

from livetranslate import deadline
from livetranslate.pipeline.guards import TranslationLoad
from livetranslate.stages.llm import GenerationRequest, LlmEngine
from livetranslate.stages.llm.lanes import LaneError, Lanes
from livetranslate.stages.translate import Interim, Translator


class Engine(LlmEngine):
    """Generates `tokens` pieces, each taking `token_s`, and logs (name, piece) as made."""

    def __init__(self, name: str, log: list, tokens: int = 5, token_s: float = 0.02):
        self.name, self.log, self.tokens, self.token_s = name, log, tokens, token_s

    def generate(self, request):
        for i in range(self.tokens):
            time.sleep(self.token_s)
            self.log.append((self.name, request.prompt, i))
            yield f"{request.prompt}{i} "

    def next_token_logprobs(self, prompt, candidates):
        self.log.append((self.name, prompt, "yes?"))
        return {"Yes": -0.1, "No": -2.0}


def run(lanes: Lanes, prompt: str, lane: str, out: dict) -> threading.Thread:
    def work():
        out[prompt] = "".join(lanes.generate(GenerationRequest(prompt), lane))

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_urgent_work_runs_while_background_work_pauses_between_tokens():
    log, out = [], {}
    background = Engine("main", log, tokens=20, token_s=0.02)
    urgent = Engine("urgent", log, tokens=5, token_s=0.02)
    lanes = Lanes(background, urgent)
    slow = run(lanes, "B", "background", out)
    while len(log) < 3:  # the background call is under way
        time.sleep(0.005)
    fast = run(lanes, "U", "urgent", out)
    fast.join(5)
    slow.join(5)
    assert out["U"] == "U0 U1 U2 U3 U4 " and out["B"].count("B") == 20
    first, last = (next(i for i, e in enumerate(log) if e[1] == "U"), max(i for i, e in enumerate(log) if e[1] == "U"))
    # while the urgent call ran, at most one background token (the one under way) was made
    assert sum(1 for e in log[first : last + 1] if e[1] == "B") <= 1
    assert lanes.paused_s > 0


def test_a_background_call_pauses_at_most_max_pause_s_at_a_time():
    log, out = [], {}
    lanes = Lanes(
        Engine("main", log, tokens=3, token_s=0.01), Engine("urgent", log, tokens=40, token_s=0.02), max_pause_s=0.1
    )
    urgent = run(lanes, "U", "urgent", out)
    while not log:
        time.sleep(0.005)
    started = time.monotonic()
    background = run(lanes, "B", "background", out)
    background.join(5)
    took = time.monotonic() - started
    assert out["B"] == "B0 B1 B2 " and took < 0.6  # the urgent call takes 0.8 s: B did not wait it out
    urgent.join(5)


def test_calls_of_one_lane_take_turns_and_the_fast_lane_shares_the_urgent_turn():
    log, out = [], {}
    lanes = Lanes(Engine("main", log), Engine("urgent", log), Engine("small", log))
    threads = [run(lanes, p, lane, out) for p, lane in (("U1", "urgent"), ("F", "fast"), ("U2", "urgent"))]
    for t in threads:
        t.join(5)
    urgentish = [e for e in log if e[0] in ("urgent", "small")]
    # one call at a time: each call's tokens are contiguous
    order = [e[1] for e in urgentish]
    assert order == sorted(order, key=lambda p: order.index(p))
    assert {e[0] for e in log if e[1] == "F"} == {"small"}


def test_without_a_small_model_the_fast_lane_is_the_urgent_one():
    log, out = [], {}
    lanes = Lanes(Engine("main", log), Engine("urgent", log))
    run(lanes, "F", "fast", out).join(5)
    assert {e[0] for e in log} == {"urgent"} and lanes.lane_of("fast") == "urgent"
    with pytest.raises(LaneError, match="unknown llm lane"):
        lanes.lane_of("vip")


def test_one_context_serves_both_lanes_in_turn_without_pausing():
    log, out = [], {}
    lanes = Lanes(Engine("main", log, tokens=10))
    threads = [run(lanes, "B", "background", out), run(lanes, "U", "urgent", out)]
    for t in threads:
        t.join(5)
    assert out["B"].count("B") == 10 and out["U"].count("U") == 10 and lanes.paused_s == 0


def test_the_backlog_is_bounded_with_a_clear_error():
    log, out = [], {}
    lanes = Lanes(Engine("main", log, tokens=30, token_s=0.02), max_waiting=1)
    busy = run(lanes, "B", "background", out)
    while not log:
        time.sleep(0.005)
    with pytest.raises(LaneError, match="calls waiting already"):
        "".join(lanes.generate(GenerationRequest("X")))
    busy.join(5)
    assert lanes.yes_probability("complete?") > 0.5  # admitted again once the backlog is gone


def test_a_call_whose_caller_stopped_waiting_is_dropped_while_it_waits_for_its_turn():
    """A timed-out call's work is not done later: the calls behind it would wait for it."""
    log, out = [], {}
    lanes = Lanes(Engine("main", log, tokens=25, token_s=0.02))
    busy = run(lanes, "A", "background", out)
    while not log:
        time.sleep(0.005)
    started = time.monotonic()
    with deadline.within(0.1), pytest.raises(deadline.DeadlineExceeded, match="waiting for its turn"):
        "".join(lanes.generate(GenerationRequest("B"), "background"))
    assert time.monotonic() - started < 0.4  # not the 0.5 s the call ahead takes
    with deadline.within(0.05), pytest.raises(deadline.DeadlineExceeded):
        lanes.yes_probability("C")
    busy.join(5)
    assert {e[1] for e in log} == {"A"}  # neither B nor C ever ran


@pytest.mark.parametrize("lane", ["urgent", "background"])
def test_a_call_stops_between_tokens_once_its_caller_stopped_waiting(lane):
    log = []
    lanes = Lanes(Engine("main", log, tokens=50, token_s=0.01), Engine("urgent", log, tokens=50, token_s=0.01))
    with deadline.within(0.1), pytest.raises(deadline.DeadlineExceeded, match="stopped waiting"):
        for _ in lanes.generate(GenerationRequest("X"), lane):
            pass
    assert 3 <= len(log) < 25
    assert "".join(lanes.generate(GenerationRequest("Y"), lane)).count("Y") == 50  # no deadline: all of it


def test_a_deadline_keeps_the_nearer_of_two_and_travels_into_a_pool_task():
    assert deadline.remaining() is None
    with deadline.within(10):
        with deadline.within(60):
            assert 9 < deadline.remaining() <= 10  # the outer one is nearer
        with deadline.within(None):  # no new limit
            assert 9 < deadline.remaining() <= 10
    assert deadline.remaining() is None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(deadline.remaining).result() is None
        left = pool.submit(deadline.run_until, time.monotonic() + 5, deadline.remaining).result()
        assert 4 < left <= 5
        with pytest.raises(deadline.DeadlineExceeded, match="a step: dropped"):
            pool.submit(
                deadline.run_until, time.monotonic() + 0.01, lambda: (time.sleep(0.05), deadline.check("a step"))
            ).result()
        # a task that had to wait for the pool past its deadline never runs
        ran = []
        blocker = pool.submit(time.sleep, 0.1)
        late = pool.submit(deadline.run_until, time.monotonic() + 0.02, ran.append, 1)
        blocker.result()
        with pytest.raises(deadline.DeadlineExceeded, match="waited for a thread"):
            late.result()
        assert ran == []


def test_interim_text_is_whole_words_cleaned_and_growing():
    now = [0.0]
    seen = []
    interim = Interim(seen.append, min_interval_s=0.3, clock=lambda: now[0])
    for piece, t in (
        ("Trans", 0.0),
        ("lation: We", 0.1),
        (" meet", 0.4),
        (" to", 0.5),
        ("morrow", 0.8),
        (" at", 1.2),
        (" ten", 1.3),
    ):
        now[0] = t
        interim.piece(piece)
    # "Translation:" is cleaned away, a word still being generated ("to…") is never shown,
    # and at most one text per 0.3 s goes out
    assert seen == ["We", "We meet", "We meet tomorrow"]


def test_a_translator_streams_its_interim_text_and_returns_the_clean_translation():
    def generate(request, on_piece=None, lane=""):
        assert lane == "urgent"
        pieces = ["We ", "meet ", "at ", "ten."]
        for p in pieces:
            on_piece(p)
        return "".join(pieces)

    seen = []
    translator = Translator(generate, "chatml")
    text = translator.translate("Wir treffen uns um zehn.", "de", "en", on_interim=seen.append, lane="urgent")
    assert text == "We meet at ten." and seen and all(text.startswith(s) for s in seen)


def test_the_small_model_takes_over_when_a_translation_would_be_late_and_hands_back():
    now = [0.0]
    load = TranslationLoad(budget_s=4.0, initial_s=2.0, clock=lambda: now[0])
    assert not load.choose_fast(lag_s=1.2)  # 1.2 + 2.0 fits
    with load.translating(fast=False):  # another stream's translation is in flight
        assert load.choose_fast(lag_s=1.2)  # 1.2 + 2 x 2.0 does not
        now[0] += 2.0
    assert not load.choose_fast(lag_s=1.2)
    assert load.choose_fast(lag_s=2.5)  # this transcript waited: 2.5 + 2.0 > 4
    for _ in range(10):  # translations got quicker (a shorter prompt, an idle CPU)
        with load.translating(fast=False):
            now[0] += 1.0
    assert load.expected_s(0.0) == pytest.approx(1.0, abs=0.1) and not load.choose_fast(lag_s=2.5)
    assert not TranslationLoad(budget_s=0).choose_fast(lag_s=100)  # 0: never


def test_a_failed_translation_does_not_change_the_estimate():
    now = [0.0]
    load = TranslationLoad(budget_s=4.0, initial_s=2.0, clock=lambda: now[0])
    with pytest.raises(TimeoutError):
        with load.translating(fast=False):
            now[0] += 30
            raise TimeoutError
    assert load.expected_s(0.0) == pytest.approx(2.0)


def test_without_an_urgent_instance_the_small_model_still_never_waits_for_background_work():
    log, out = [], {}
    lanes = Lanes(Engine("main", log, tokens=30, token_s=0.02), None, Engine("small", log, tokens=3, token_s=0.01))
    slow = run(lanes, "B", "background", out)
    while not log:
        time.sleep(0.005)
    started = time.monotonic()
    run(lanes, "F", "fast", out).join(5)
    assert time.monotonic() - started < 0.3 and out["F"] == "F0 F1 F2 "  # not after B's 0.6 s
    slow.join(5)
    assert lanes.paused_s > 0  # B paused while F ran


class PrefillingEngine(Engine):
    """Evaluates its prompt in `pieces` steps of `piece_s` before generating, calling the hook."""

    def __init__(self, name, log, pieces=10, piece_s=0.02, **kw):
        super().__init__(name, log, **kw)
        self.pieces, self.piece_s = pieces, piece_s

    def prefill(self, prompt, between):
        for i in range(self.pieces):
            time.sleep(self.piece_s)
            self.log.append((self.name, prompt, f"p{i}"))
            between()


def test_a_background_prompt_pauses_between_its_pieces_for_urgent_work():
    log = []
    lanes = Lanes(PrefillingEngine("main", log, pieces=20), Engine("urgent", log, tokens=3))
    out = {}
    background = run(lanes, "B", "background", out)
    time.sleep(0.1)  # the window's prompt is being evaluated
    urgent = run(lanes, "U", "urgent", out)
    urgent.join()
    background.join()
    assert out["U"] == "U0 U1 U2 " and out["B"] == "B0 B1 B2 B3 B4 "
    first_u, last_u = (
        next(i for i, e in enumerate(log) if e[0] == "urgent"),
        max(i for i, e in enumerate(log) if e[0] == "urgent"),
    )
    # while the urgent call ran, at most one piece of the background prompt was evaluated
    assert sum(1 for e in log[first_u:last_u] if e[0] == "main") <= 1
    assert any(str(e[2]).startswith("p") for e in log[last_u:])  # the prompt went on after it
    assert lanes.paused_s > 0


def test_a_background_prompt_pauses_for_max_pause_s_in_all_under_constant_urgent_load():
    log = []
    lanes = Lanes(
        PrefillingEngine("main", log, pieces=30, piece_s=0.001),
        Engine("urgent", log, tokens=200, token_s=0.01),
        max_pause_s=0.2,
    )
    out = {}
    urgent = run(lanes, "U", "urgent", out)  # two seconds of urgent work
    time.sleep(0.05)
    started = time.monotonic()
    background = run(lanes, "B", "background", out)
    # its whole prompt is evaluated within a few pauses, not 30 of them (6 s)
    while not any(e[0] == "main" and e[2] == "p29" for e in log):
        assert time.monotonic() - started < 1.5, "the prompt waited a pause per piece"
        time.sleep(0.01)
    urgent.join()
    background.join()


class Hanging(Engine):
    """Hangs in its first token until `gate` is set."""

    def __init__(self, name, log, gate: threading.Event):
        super().__init__(name, log, tokens=3)
        self.gate = gate

    def generate(self, request):
        self.gate.wait(30)
        yield from super().generate(request)


def test_a_stalled_urgent_lane_is_logged_and_its_calls_go_to_the_other_instance(caplog):
    log, out, gate = [], {}, threading.Event()
    lanes = Lanes(Engine("main", log, tokens=3), Hanging("urgent", log, gate), max_pause_s=5.0, stall_s=0.2)
    try:
        hung = run(lanes, "H", "urgent", out)
        time.sleep(0.05)
        assert lanes.check_stalls() == []  # not yet
        time.sleep(0.3)
        with caplog.at_level("ERROR", logger="livetranslate.stages.llm"):
            assert lanes.check_stalls() == ["urgent"]
            assert lanes.check_stalls() == []  # said once
        assert "urgent lane made no progress" in caplog.text and "llm stall:" in caplog.text
        started = time.monotonic()
        after = run(lanes, "U", "urgent", out)
        background = run(lanes, "B", "background", out)  # no pausing for the hung call
        after.join(5)
        background.join(5)
        assert out["U"] == "U0 U1 U2 " and out["B"] == "B0 B1 B2 " and time.monotonic() - started < 2
        assert ("main", "U", 0) in log  # the other instance made it
        assert not hung.is_alive() or "H" not in out
    finally:
        gate.set()


def test_a_stalled_background_lane_moves_to_the_urgent_instance():
    log, out, gate = [], {}, threading.Event()
    lanes = Lanes(Hanging("main", log, gate), Engine("urgent", log, tokens=3), stall_s=0.2)
    try:
        run(lanes, "H", "background", out)
        time.sleep(0.3)
        assert lanes.check_stalls() == ["background"]
        later = run(lanes, "B", "background", out)
        later.join(5)
        assert out["B"] == "B0 B1 B2 " and ("urgent", "B", 0) in log
        assert lanes.yes_probability("check") > 0.5 and ("urgent", "check", "yes?") in log
    finally:
        gate.set()


def test_with_one_instance_a_stall_is_logged_and_nothing_moves():
    log, out, gate = [], {}, threading.Event()
    lanes = Lanes(Hanging("main", log, gate), stall_s=0.2)
    try:
        run(lanes, "H", "urgent", out)
        time.sleep(0.3)
        assert lanes.check_stalls() == ["urgent"]
        assert lanes._route("urgent")[1] is lanes._route("background")[1]
    finally:
        gate.set()
