"""Abuse beside live speech: two real streams while attackers run every attack of
bench/abuse.py against the same server. The live streams' text is what it is without the
attack, the attacks are refused with clear errors, and the server stays ready."""

import sys
import threading
import time
from pathlib import Path

import pytest

from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.protocol import EventKind, SessionOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from abuse import Attack  # noqa: E402

pytestmark = pytest.mark.slow
MAX_STREAMS = 8  # model_repository/pipeline/config.pbtxt


def two_streams(server, audio_files, tag):
    results = {}

    def speak(name):
        pcm, rate = read_audio(audio_files[name])
        options = SessionOptions(f"{tag}-{name}", rate, "de", translate=False, partials=False)
        with PipelineClient(server.grpc_url) as client:
            results[name] = list(client.stream(chunks(pcm, rate // 10), options, realtime=True))

    threads = [threading.Thread(target=speak, args=(name,)) for name in ("speech", "speech_b")]
    for t in threads:
        t.start()
    return threads, results


def texts(events):
    return [e.text for e in events if e.kind == EventKind.TRANSCRIPT]


def test_live_streams_are_untouched_by_attacks(server, audio_files):
    threads, calm = two_streams(server, audio_files, "calm")
    for t in threads:
        t.join(300)
    threads, attacked = two_streams(server, audio_files, "attacked")
    time.sleep(1.0)  # the live streams hold their places first
    attack = Attack(server.grpc_url, idle_streams=MAX_STREAMS + 4).start()
    try:  # whatever fails here, the attack stops: left running it would take every later test down
        assert attack.idle_admitted.wait(60)
        # a new speaker now is told the server is full, at once (the bound covers a busy machine)
        began = time.monotonic()
        with PipelineClient(server.grpc_url) as client:
            refused = list(
                client.stream(
                    chunks(read_audio(audio_files["speech_b"])[0], 1600), SessionOptions("latecomer", translate=False)
                )
            )
        assert time.monotonic() - began < 15, time.monotonic() - began  # connect + refuse
        assert refused[-1].kind == EventKind.END and "server full" in refused[-1].error, refused[-1]
        for t in threads:
            t.join(300)
    finally:
        tally = attack.stop().outcomes
    for name in ("speech", "speech_b"):
        assert calm[name][-1].kind == EventKind.END and attacked[name][-1].kind == EventKind.END
        assert not [e for e in attacked[name] if e.kind == EventKind.ERROR or e.error]
        assert texts(attacked[name]) == texts(calm[name])
    assert set(tally["llm"]) == {"refused: internal"} and set(tally["whisper"]) == {"refused: internal"}
    assert tally["huge"] == {"refused: too long": 1}
    assert tally["idle"].get("refused: full", 0) >= 4 and tally["idle"].get("admitted", 0) <= MAX_STREAMS - 2
    assert tally["subscribe"] == {"refused: unknown session": 1000}
    assert server.is_ready()
    # the idle streams ended, their places are free again
    with PipelineClient(server.grpc_url) as client:
        after = list(
            client.stream(
                chunks(read_audio(audio_files["speech_b"])[0], 1600),
                SessionOptions("after-attack", 16000, translate=False),
            )
        )
    assert after[-1].kind == EventKind.END and not after[-1].error and texts(after)
