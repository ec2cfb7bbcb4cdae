"""End to end: a real Triton server (cpu profile), real models, espeak-ng German audio."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from raw import RawStream

from livetranslate import protocol as P
from livetranslate.audio import chunks, read_audio
from livetranslate.client import ClientError, PipelineClient, StreamStats
from livetranslate.protocol import EventKind, SessionOptions
from livetranslate.quality.evaluation import wer
from livetranslate.quality.samples import load_reference
from livetranslate.stages import priority

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]

# Whisper base on espeak-ng's robotic voice is far from perfect (bench/results/pipeline.md:
# WER per segment). These 5 clean sentences score ~25 % here; 0.40 leaves room for noise
# in decoding while still failing on garbage, the wrong language or missing segments.
MAX_WER = 0.40


def stream_file(server, path, *, realtime=False, language="de", session=None, stats=None, partials=True):
    pcm, rate = read_audio(path)
    with PipelineClient(server.grpc_url) as client:
        # a new session each time: a stored session's name continues its segment ids and clock
        options = SessionOptions(
            session or f"{Path(path).stem}-{uuid.uuid4().hex[:8]}", rate, language, partials=partials
        )
        return list(client.stream(chunks(pcm, rate // 10), options, realtime=realtime, stats=stats))


def transcripts(events):
    return [e for e in events if e.kind == EventKind.TRANSCRIPT]


def reference_text(path):
    return " ".join(u.text for u in load_reference(path))


def test_german_words_come_back_in_order(server, audio_files):
    events = stream_file(server, audio_files["speech"])
    assert events[-1].kind == EventKind.END
    assert not [e for e in events if e.kind == EventKind.ERROR]
    got = transcripts(events)
    ref = load_reference(audio_files["speech"])
    assert [e.segment_id for e in got] == list(range(len(ref)))
    for event, utterance in zip(got, ref):
        assert event.language == "de"
        assert abs(event.start_s - utterance.start_s) < 0.5 and abs(event.end_s - utterance.end_s) < 0.8
        assert event.start_s < event.end_s and event.latency_ms > 0
    assert all(a.end_s <= b.start_s for a, b in zip(got, got[1:]))
    error = wer(reference_text(audio_files["speech"]), " ".join(e.text for e in got))
    assert error < MAX_WER, (error, [e.text for e in got])


def test_transcripts_arrive_while_audio_is_still_streaming(server, audio_files):
    stats = StreamStats()
    received = []
    pcm, rate = read_audio(audio_files["speech"])
    with PipelineClient(server.grpc_url) as client:
        for event in client.stream(chunks(pcm, rate // 10), SessionOptions("live", rate), realtime=True, stats=stats):
            received.append((time.monotonic() - stats.started, event))
    audio_s = len(pcm) / rate
    first = next(t for t, e in received if e.kind == EventKind.TRANSCRIPT)
    # the first sentence ends at ~4.3 s of a ~24 s stream: it must not wait for the end
    assert first < audio_s / 2, (first, audio_s)
    for t, event in received:
        if event.kind == EventKind.TRANSCRIPT:
            assert t < event.end_s + 5.0  # each one shortly after its own audio, not at the end
    # interim results: while an utterance is open, partials with the id its transcript will
    # have, and never one after that transcript
    events = [e for _, e in received]
    partials = [e for e in events if e.kind == EventKind.PARTIAL]
    assert partials, "no partial event while speech was streaming in real time"
    finals = {e.segment_id: i for i, e in enumerate(events) if e.kind == EventKind.TRANSCRIPT}
    for i, e in enumerate(events):
        if e.kind == EventKind.PARTIAL:
            assert e.text and e.segment_id in finals and i < finals[e.segment_id]
            assert e.end_s <= events[finals[e.segment_id]].end_s + 0.5
    # partials came from whisper_partial, whose stub process runs wholly at idle priority
    stats = grpcclient.InferenceServerClient(server.grpc_url).get_inference_statistics(
        P.WHISPER_PARTIAL, headers=server.admin_headers()
    )
    assert stats.model_stats[0].inference_stats.success.count >= len(partials)
    [stub] = stub_pids(server, P.WHISPER_PARTIAL)
    assert priority.is_idle(stub) and not priority.is_idle(*stub_pids(server, P.WHISPER))


def stub_pids(server, model: str) -> list[int]:
    """The Python backend stub processes Triton started for `model`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            session = os.getsid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
        if session == server.process.pid and any(f"/{model}/1/model.py".encode() in a for a in cmdline):
            found.append(int(proc.name))
    return found


def test_two_concurrent_streams_stay_apart(server, audio_files):
    results = {}

    def run(name):  # partials off for one of them
        results[name] = stream_file(server, audio_files[name], realtime=True, session=name, partials=name == "speech")

    def broken():
        """Beside them, a client that floods audio as fast as it can and then vanishes
        without ending its stream, and one that sends a float chunk where int16 belongs."""
        pcm, rate = read_audio(audio_files["speech"])
        flood = grpcclient.InferenceServerClient(server.grpc_url)
        flood.start_stream(callback=lambda result, error: None)
        options = SessionOptions(f"flood-{uuid.uuid4().hex[:6]}", rate).to_tensors()
        for i, part in enumerate(chunks(pcm, rate // 10)):
            tensors = {P.AUDIO: part, **(options if i == 0 else {})}
            inputs = []
            for name, value in tensors.items():
                dtype = "BYTES" if value.dtype == np.object_ else grpcclient.np_to_triton_dtype(value.dtype)
                inputs.append(grpcclient.InferInput(name, list(value.shape), dtype))
                inputs[-1].set_data_from_numpy(value)
            flood.async_stream_infer(P.PIPELINE, inputs, sequence_id=777_001, sequence_start=i == 0)
        flood.stop_stream(cancel_requests=True)  # gone: no sequence end
        bad = grpcclient.InferenceServerClient(server.grpc_url)
        tensor = grpcclient.InferInput(P.AUDIO, [100], "FP32")
        tensor.set_data_from_numpy(np.zeros(100, np.float32))
        try:  # refused (tests below check the message); here it only runs beside the others
            bad.infer(P.PIPELINE, [tensor], sequence_id=777_002, sequence_start=True)
        except Exception:
            pass

    threads = [threading.Thread(target=run, args=(n,)) for n in ("speech", "speech_b")]
    threads.append(threading.Thread(target=broken))
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    errors = [e.text for name in results for e in results[name] if e.kind == EventKind.ERROR]
    assert not errors, errors  # e.g. a batched decode of both streams failing
    a = " ".join(e.text for e in transcripts(results["speech"]))
    b = " ".join(e.text for e in transcripts(results["speech_b"]))
    assert "Projekt" in a and "Kunden" in a and "Bericht" not in a
    assert "Bericht" in b and "Projekt" not in b and "Kunden" not in b
    assert wer(reference_text(audio_files["speech"]), a) < MAX_WER
    assert [e.segment_id for e in transcripts(results["speech_b"])] == [0, 1, 2]
    assert not [e for e in results["speech_b"] if e.kind == EventKind.PARTIAL]  # turned off


def test_silence_gives_no_text(server, audio_files):
    events = stream_file(server, audio_files["silence"])
    assert [e.kind for e in events] == [EventKind.END]


def test_loud_noise_gives_no_text(server, audio_files):
    """Noise the VAD passes on to Whisper (tests/test_vad.py): the speech filter drops
    whatever Whisper makes of it."""
    events = stream_file(server, audio_files["noise"], partials=False)
    assert [(e.kind, e.text) for e in events if e.kind != EventKind.END] == []
    assert events[-1].kind == EventKind.END


def test_whisper_refuses_an_absurd_beam(server, audio_files):
    """Sent as the server's own BLS call would be (with its internal token): the stage's own
    check still answers. Without the token it is refused as internal (tests/test_security.py)."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    inputs = {P.AUDIO: np.zeros((1, 16000), np.float32), P.BEAM_SIZE: np.array([[10_000]], np.int32)}
    tensors = []
    for name, value in inputs.items():
        tensors.append(grpcclient.InferInput(name, list(value.shape), grpcclient.np_to_triton_dtype(value.dtype)))
        tensors[-1].set_data_from_numpy(value)
    with pytest.raises(Exception, match="BEAM_SIZE must be 0"):
        client.infer(P.WHISPER, tensors, parameters={P.INTERNAL_PARAMETER: server.options.internal_token})
    with pytest.raises(Exception, match="internal to the server"):
        client.infer(P.WHISPER, tensors)
    assert client.is_server_ready()


def test_cli_stream_jsonl(server, audio_files):
    out = subprocess.run(
        CLI + ["stream", str(audio_files["speech_b"]), "--url", server.grpc_url, "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert {"kind", "text", "segment_id", "start_s", "end_s", "latency_ms"} <= set(events[0])
    assert events[-1]["kind"] == "end"
    assert "Bericht" in " ".join(e["text"] for e in events)


def test_cli_stream_from_stdin(server, audio_files):
    pcm, rate = read_audio(audio_files["speech_b"])
    out = subprocess.run(
        CLI + ["stream", "-", "--rate", str(rate), "--url", server.grpc_url],
        input=pcm.astype("<i2").tobytes(),
        capture_output=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert "Bericht" in out.stdout.decode()


# --- bad input: a clear error, and the server carries on --------------------------------
def assert_server_still_serves(server, audio_files):
    events = stream_file(server, audio_files["speech_b"])
    assert "Bericht" in " ".join(e.text for e in transcripts(events))


AUDIO = np.zeros(1600, np.int16)


@pytest.mark.parametrize(
    "tensors, expected",
    [
        ({P.AUDIO: AUDIO.astype(np.float32)}, "data-type"),
        ({P.AUDIO: AUDIO.reshape(2, 800)}, "shape"),
    ],
    ids=["wrong-dtype", "wrong-shape"],
)
def test_triton_rejects_malformed_tensors(server, audio_files, tensors, expected):
    stream = RawStream(server)
    stream.send(tensors, start=True)
    error = stream.next()
    stream.close()
    assert isinstance(error, Exception) and expected in str(error), error
    assert_server_still_serves(server, audio_files)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({P.SAMPLE_RATE: np.array([3], np.int32)}, "SAMPLE_RATE 3 Hz is out of range"),
        ({P.SAMPLE_RATE: np.array([50_000_000], np.int32)}, "out of range"),
        ({P.SOURCE_LANGUAGE: np.array([b"xx"], np.object_)}, "SOURCE_LANGUAGE): unknown language 'xx'"),
    ],
    ids=["rate-too-low", "rate-absurd", "unknown-language"],
)
def test_bad_session_options_get_an_error_event(server, audio_files, options, expected):
    stream = RawStream(server)
    stream.send({P.AUDIO: AUDIO, **options}, start=True)
    event = stream.next()
    assert event.kind == EventKind.ERROR and expected in event.text
    stream.send({P.AUDIO: AUDIO}, end=True)  # the rest of that stream is refused too
    assert "no open stream" in stream.next().text
    stream.close()
    assert_server_still_serves(server, audio_files)


def test_empty_chunk_is_an_error_and_the_stream_goes_on(server, audio_files):
    pcm, rate = read_audio(audio_files["speech_b"])
    stream = RawStream(server)
    stream.send({P.AUDIO: pcm[: rate * 4], **SessionOptions("empty", rate).to_tensors()}, start=True)
    stream.send({P.AUDIO: np.zeros(0, np.int16)})
    stream.send({P.AUDIO: pcm[rate * 4 :]})
    stream.send({P.AUDIO: np.zeros(0, np.int16)}, end=True)
    events = []
    while not events or events[-1].kind != EventKind.END:
        events.append(stream.next(120))
    stream.close()
    errors = [e for e in events if e.kind == EventKind.ERROR]
    assert len(errors) == 1 and "empty" in errors[0].text
    assert "Bericht" in " ".join(e.text for e in transcripts(events))


def test_chunk_before_sequence_start_is_refused(server, audio_files):
    stream = RawStream(server)
    stream.send({P.AUDIO: AUDIO})  # no start flag on a new sequence
    error = stream.next()
    stream.close()
    assert isinstance(error, Exception) and "START" in str(error), error
    assert_server_still_serves(server, audio_files)


def test_cli_errors_are_plain_and_non_zero(server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all\n" * 50)
    out = subprocess.run(CLI + ["stream", str(text), "--url", server.grpc_url], capture_output=True, text=True)
    assert out.returncode != 0 and "not an audio file" in out.stderr
    out = subprocess.run(CLI + ["stream", str(text), "--url", "127.0.0.1:1"], capture_output=True, text=True)
    assert out.returncode != 0 and "not an audio file" in out.stderr
    wav = tmp_path / "s.wav"
    import soundfile

    soundfile.write(str(wav), np.zeros(16000, np.int16), 16000)
    out = subprocess.run(CLI + ["stream", str(wav), "--url", "127.0.0.1:1"], capture_output=True, text=True)
    assert out.returncode != 0 and "cannot reach the livetranslate server" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run(
        CLI + ["stream", str(wav), "--url", server.grpc_url, "--language", "xx"], capture_output=True, text=True
    )
    assert out.returncode != 0 and "Invalid value for '--language': unknown language 'xx'" in out.stderr


def test_client_reports_unreachable_server():
    with pytest.raises(ClientError, match="cannot reach"):
        PipelineClient("127.0.0.1:1", timeout_s=2)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie is gone, only not yet reaped


def test_serve_stops_triton_cleanly_on_sigterm(tmp_path):
    import signal
    import urllib.request

    from conftest import free_port

    ports = [str(free_port()) for _ in range(3)]
    serve = subprocess.Popen(
        CLI
        + [
            "serve",
            "--grpc-port",
            ports[0],
            "--http-port",
            ports[1],
            "--metrics-port",
            ports[2],
            "--llm",
            "gemma3-270m",
        ],
        env={**os.environ, "LIVETRANSLATE_DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/v2/models/pipeline/ready", timeout=2):
                    break
            except OSError:
                assert serve.poll() is None and time.monotonic() < deadline, "serve did not get ready"
                time.sleep(1)
        tritons = _children(serve.pid)
        assert tritons
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0, serve.stderr.read()
        assert "stopping Triton" in serve.stderr.read()
        assert not [p for p in tritons if _alive(p)]  # no tritonserver left behind
    finally:
        if serve.poll() is None:
            serve.kill()


def test_run_starts_a_server_streams_and_stops(audio_files, tmp_path):
    from conftest import free_port

    ports = [str(free_port()) for _ in range(3)]
    out = subprocess.run(
        CLI
        + [
            "run",
            str(audio_files["speech_b"]),
            "--no-translate",
            "--format",
            "jsonl",
            "--llm",
            "gemma3-270m",
            "--grpc-port",
            ports[0],
            "--http-port",
            ports[1],
            "--metrics-port",
            ports[2],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LIVETRANSLATE_DATA_DIR": str(tmp_path / "data")},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1]["kind"] == "end" and "Bericht" in " ".join(e["text"] for e in events)


def test_without_whisper_partial_partials_share_whisper(tmp_path, audio_files):
    """The gpu profile does not load whisper_partial: partials then go to `whisper`."""
    import shutil

    from conftest import ARTIFACTS, free_port

    from livetranslate.launcher import DEFAULT_MODEL_REPOSITORY, ServerOptions, TritonServer

    repo = tmp_path / "repository"
    shutil.copytree(
        DEFAULT_MODEL_REPOSITORY,
        repo,
        symlinks=True,
        ignore=shutil.ignore_patterns(P.WHISPER_PARTIAL, "__pycache__", "llm", "translate", "completeness", "enhance"),
    )
    options = ServerOptions(
        model_repository=repo,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        data_dir=tmp_path / "sessions",
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-no-partial-model.log") as srv:
        pcm, rate = read_audio(audio_files["speech"])
        with PipelineClient(srv.grpc_url) as client:
            events = list(
                client.stream(chunks(pcm[: 12 * rate], rate // 10), SessionOptions("p", rate, "de"), realtime=True)
            )
        partials = [e for e in events if e.kind == EventKind.PARTIAL]
        assert partials and any(e.kind == EventKind.TRANSCRIPT for e in events)
        assert not [e for e in events if e.kind == EventKind.ERROR]
        stats = grpcclient.InferenceServerClient(srv.grpc_url).get_inference_statistics(
            P.WHISPER, headers=srv.admin_headers()
        )
        finals = sum(e.kind == EventKind.TRANSCRIPT for e in events)
        assert stats.model_stats[0].inference_stats.success.count >= finals + len(partials)
