"""A live session with a long silence in the middle, in real time, on a real server: speech,
more silence than the longest idle timeout of the stateful models, speech again. The models'
idle timeouts are shortened (in a copy of the model repository) so that this takes a minute
and a half instead of the half hour the shipped timeouts would need; the pipeline's
keep-alive is shortened with them, in the same ratio to the idle timeouts as shipped or less."""

import re
import shutil
import uuid

import numpy as np
import pytest
from conftest import ARTIFACTS, free_port

from livetranslate import protocol as P
from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient
from livetranslate.launcher import DEFAULT_MODEL_REPOSITORY, ServerOptions, TritonServer
from livetranslate.protocol import EventKind, SessionOptions
from livetranslate.quality.evaluation import wer
from livetranslate.quality.samples import load_reference

pytestmark = pytest.mark.slow

IDLE_S = {P.PIPELINE: 20, P.VAD: 10, P.ENHANCE: 15}  # the sequence batchers' idle timeouts
KEEPALIVE_S = 3
SILENCE_S = 30  # more than any of them


def quick_idle_repository(path):
    """The model repository with short idle timeouts and keep-alive: nothing else differs."""
    shutil.copytree(DEFAULT_MODEL_REPOSITORY, path, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for model, idle_s in IDLE_S.items():
        config = path / model / "config.pbtxt"
        text, n = re.subn(
            r"max_sequence_idle_microseconds: \d+",
            f"max_sequence_idle_microseconds: {idle_s * 10**6}",
            config.read_text(),
        )
        if model == P.PIPELINE:
            text, k = re.subn(r'(key: "keepalive_s", value: \{ string_value: )"\d+"', rf'\1"{KEEPALIVE_S}"', text)
            assert k == 1
        assert n == 1
        config.write_text(text)
    return path


@pytest.fixture(scope="module")
def quick_idle_server(tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    repository = quick_idle_repository(tmp_path_factory.mktemp("repository") / "model_repository")
    options = ServerOptions(
        model_repository=repository,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        llm="gemma3-270m",
        data_dir=tmp_path_factory.mktemp("sessions"),
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-long-silence.log") as srv:
        yield srv


def of(events, kind):
    return [e for e in events if e.kind == kind]


def test_after_a_silence_longer_than_every_idle_timeout_everything_still_works(quick_idle_server, audio_files):
    before, rate = read_audio(audio_files["speech_b"])
    after, rate_after = read_audio(audio_files["speech"])
    assert rate == rate_after
    pcm = np.concatenate([before, np.zeros(SILENCE_S * rate, np.int16), after])
    resumed_s = (len(before) / rate) + SILENCE_S  # where the speech after the silence starts
    with PipelineClient(quick_idle_server.grpc_url) as client:
        options = SessionOptions(f"long-silence-{uuid.uuid4().hex[:8]}", rate)
        events = list(client.stream(chunks(pcm, rate // 10), options, realtime=True))

    assert not [e for e in events if e.kind == EventKind.ERROR or e.error], [e for e in events if e.error][:3]
    assert events[-1].kind == EventKind.END and [e.kind for e in events].count(EventKind.END) == 1
    transcripts = of(events, EventKind.TRANSCRIPT)
    assert [t.segment_id for t in transcripts] == list(range(8))
    later = [t for t in transcripts if t.start_s >= resumed_s - 0.5]
    assert len(later) == 5
    reference = " ".join(u.text for u in load_reference(audio_files["speech"]))
    assert wer(reference, " ".join(t.text for t in later)) < 0.4, [t.text for t in later]
    translations = of(events, EventKind.TRANSLATION)
    assert [t.segment_id for t in translations] == list(range(8)) and all(t.text for t in translations)
    enhanced = of(events, EventKind.ENHANCED)
    assert all(e.text for e in enhanced)
    # windows on both sides of the silence: the first published during it, the rest after it
    assert any(e.segment_id <= 2 for e in enhanced) and any(e.first_segment_id >= 3 for e in enhanced)
    assert {s for e in enhanced for s in range(e.first_segment_id, e.segment_id + 1)} == set(range(8))
    log = (ARTIFACTS / "triton-long-silence.log").read_text(errors="replace")
    assert "must specify the START flag" not in log
