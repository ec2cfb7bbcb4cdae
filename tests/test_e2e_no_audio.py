"""Speaker streams that send no audio give way, against a real server: one closed after the
no-audio time is told so on its next request and a reconnect goes on with its session; a new
speaker takes the place of a hoarded one when the server is full; a stream that sends silence
is never closed for it. The times are short here (serve --no-audio-s/--no-audio-yield-s)."""

import queue
import random
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from conftest import ARTIFACTS, free_port

from livetranslate import protocol as P
from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.launcher import ServerOptions, TritonServer
from livetranslate.protocol import Event, EventKind, SessionOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from abuse import tensor  # noqa: E402

pytestmark = pytest.mark.slow
NO_AUDIO_S, YIELD_S = 6.0, 3.0
MAX_STREAMS = 8  # model_repository/pipeline/config.pbtxt


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory):
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        data_dir=tmp_path_factory.mktemp("sessions"),
        env={"LIVETRANSLATE_NO_AUDIO_S": str(NO_AUDIO_S), "LIVETRANSLATE_NO_AUDIO_YIELD_S": str(YIELD_S)},
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-no-audio.log") as server:
        yield server


class RawStream:
    """Speaker streams as a bare gRPC client sends them: requests when it likes, or never."""

    def __init__(self, url):
        self.client, self.answers = grpcclient.InferenceServerClient(url), queue.Queue()
        self.client.start_stream(
            callback=lambda result, error: self.answers.put(error if error else Event.from_tensors(result.as_numpy))
        )

    def send(self, sequence_id, audio, session=None):
        tensors = [tensor(P.AUDIO, audio)]
        if session is not None:
            options = SessionOptions(session, translate=False, partials=False).to_tensors()
            tensors += [tensor(k, v) for k, v in options.items()]
        self.client.async_stream_infer(P.PIPELINE, tensors, sequence_id=sequence_id, sequence_start=session is not None)

    def events(self, wait_s=2.0):
        out, deadline = [], time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                out.append(self.answers.get(timeout=0.1))
            except queue.Empty:
                pass
        return out

    def close(self, ids):
        for sequence_id in ids:
            self.client.async_stream_infer(
                P.PIPELINE, [tensor(P.AUDIO, np.zeros(0, np.int16))], sequence_id=sequence_id, sequence_end=True
            )
        time.sleep(0.5)
        self.client.stop_stream(cancel_requests=True)
        self.client.close()


def transcripts(events):
    return [e for e in events if isinstance(e, Event) and e.kind == EventKind.TRANSCRIPT]


def test_a_stream_without_audio_is_closed_and_a_reconnect_goes_on(quick_server, audio_files):
    session = f"lunch-{uuid.uuid4().hex[:6]}"
    pcm, rate = read_audio(audio_files["speech"])
    with PipelineClient(quick_server.grpc_url) as client:  # a first part, then the client goes quiet
        first = list(
            client.stream(chunks(pcm[: rate * 10], rate // 10), SessionOptions(session, rate, translate=False))
        )
    spoken = transcripts(first)
    assert spoken
    raw, sequence_id = RawStream(quick_server.grpc_url), random.randint(1, 2**62)
    try:
        raw.send(sequence_id, np.zeros(rate // 2, np.int16), session)
        assert not [e for e in raw.events(1.0) if not isinstance(e, Event) or e.error]
        time.sleep(NO_AUDIO_S + 2.0)
        for _ in range(2):  # far too little audio to count, and every later request hears the same
            raw.send(sequence_id, np.zeros(10, np.int16))
        told = raw.events(2.0)
        assert [(e.kind, e.text) for e in told] == [
            (EventKind.ERROR, f"no audio for {NO_AUDIO_S:.0f} s: the stream was closed; reconnect to go on")
        ] * 2
    finally:
        raw.close([sequence_id])
    with PipelineClient(quick_server.grpc_url) as client:  # the reconnect: same session, it goes on
        again = list(
            client.stream(chunks(pcm[rate * 10 :], rate // 10), SessionOptions(session, rate, translate=False))
        )
    assert again[-1].kind == EventKind.END and not again[-1].error
    later = transcripts(again)
    assert later and later[0].segment_id > spoken[-1].segment_id and later[0].start_s >= spoken[-1].end_s


def test_a_new_speaker_takes_the_place_of_a_hoarded_stream(quick_server, audio_files):
    raw = RawStream(quick_server.grpc_url)
    ids = [random.randint(1, 2**62) for _ in range(MAX_STREAMS + 4)]
    try:
        for i, sequence_id in enumerate(ids):  # one short chunk each, then nothing
            raw.send(sequence_id, np.zeros(1600, np.int16), f"hoard-{i}-{uuid.uuid4().hex[:4]}")
        refused = [e for e in raw.events(2.0) if isinstance(e, Event) and "server full" in e.error]
        assert len(refused) == 4
        time.sleep(YIELD_S + 0.5)
        pcm, rate = read_audio(audio_files["speech_b"])
        with PipelineClient(quick_server.grpc_url) as client:
            speaker = list(
                client.stream(
                    chunks(pcm, rate // 10),
                    SessionOptions(f"real-{uuid.uuid4().hex[:6]}", rate, translate=False),
                    realtime=False,
                )
            )
        assert speaker[-1].kind == EventKind.END and not speaker[-1].error and transcripts(speaker)
        for sequence_id in ids[:MAX_STREAMS]:
            raw.send(sequence_id, np.zeros(1600, np.int16))
        told = [e.text for e in raw.events(2.0) if isinstance(e, Event) and e.kind == EventKind.ERROR]
        assert any("to make room for another speaker; reconnect to go on" in text for text in told), told
    finally:
        raw.close(ids)


def test_a_stream_that_sends_silence_is_not_closed(quick_server):
    raw, sequence_id = RawStream(quick_server.grpc_url), random.randint(1, 2**62)
    try:
        raw.send(sequence_id, np.zeros(1600, np.int16), f"pause-{uuid.uuid4().hex[:6]}")
        began = time.monotonic()
        while time.monotonic() - began < NO_AUDIO_S * 1.5:  # a meeting on pause: silence, in real time
            time.sleep(0.1)
            raw.send(sequence_id, np.zeros(1600, np.int16))
        raw.client.async_stream_infer(
            P.PIPELINE, [tensor(P.AUDIO, np.zeros(0, np.int16))], sequence_id=sequence_id, sequence_end=True
        )
        events = raw.events(3.0)  # silence brings no event until the end
        assert [(e.kind, e.error) for e in events if isinstance(e, Event)] == [(EventKind.END, "")], events
    finally:
        raw.client.stop_stream(cancel_requests=True)
        raw.client.close()
