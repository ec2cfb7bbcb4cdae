"""The numpy GE2E speaker encoder (livetranslate.stages.speakers) and its torch-free checkpoint
reader. The reference numbers below come from Resemblyzer 0.1.4 itself (torch 2.13 CPU, librosa
0.11, in a throwaway venv): the numpy encoder matched it to cosine 1.0 on real recordings too."""

import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from livetranslate.stages.speakers import frontend
from livetranslate.stages.speakers.checkpoint import CheckpointError, load_checkpoint
from livetranslate.weights.catalog import DEFAULT_SPEAKER, MODELS


def voiced(seconds=3.2, f0=(110.0, 150.0), seed=0):
    """A deterministic voiced sound: a pitch glide, two formants, a 4 Hz syllable rhythm."""
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    pitch = np.linspace(*f0, n)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    wav = np.zeros(n)
    for k in range(1, 31):
        f = k * pitch.mean()
        gain = np.exp(-(((f - 700) / 250) ** 2)) + 0.6 * np.exp(-(((f - 1800) / 400) ** 2)) + 0.05 / k
        wav += gain * np.sin(k * phase)
    wav *= 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    wav = 0.1 * wav / np.abs(wav).max() + np.random.default_rng(seed).normal(0, 0.003, n)
    return wav.astype(np.float32)


# Resemblyzer's embed_utterance of voiced() and voiced(f0=(200, 240), seed=1): its six largest
# components (index, value)
REFERENCE_LOW = [(64, 0.20601), (82, 0.28369), (158, 0.27126), (169, 0.2238), (202, 0.2232), (239, 0.23785)]
REFERENCE_HIGH = [(14, 0.17559), (155, 0.21675), (189, 0.18297), (219, 0.29302), (248, 0.17781), (251, 0.19538)]


@pytest.fixture(scope="module")
def encoder():
    from livetranslate.stages.speakers.encoder import SpeakerEncoder

    spec = MODELS[DEFAULT_SPEAKER]
    if not spec.is_ready():
        pytest.skip(
            f"{DEFAULT_SPEAKER} is not assembled in {spec.path()}: scripts/setup.sh installs the Resemblyzer "
            "wheel (--no-deps) and runs `livetranslate models fetch`"
        )
    return SpeakerEncoder.load(spec.path())


def test_matches_resemblyzer(encoder):
    for wav, reference in [(voiced(), REFERENCE_LOW), (voiced(f0=(200.0, 240.0), seed=1), REFERENCE_HIGH)]:
        e = encoder.embed_utterance(wav, preprocess=False)
        assert e.shape == (256,) and e.dtype == np.float32
        assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5) and e.min() >= 0
        assert sorted(int(i) for i in np.argsort(-e)[:6]) == [i for i, _ in reference]
        for i, value in reference:
            assert e[i] == pytest.approx(value, abs=2e-4)


def test_a_batch_embeds_each_utterance_as_alone(encoder):
    wavs = [voiced(2.0), voiced(5.5, (180.0, 200.0), 2), voiced(0.6, (90.0, 100.0), 3)]
    together = encoder.embed_utterances(wavs, preprocess=False)
    for wav, e in zip(wavs, together):
        assert np.allclose(e, encoder.embed_utterance(wav, preprocess=False), atol=1e-5)
    assert encoder.embed_utterances([]).shape == (0, 256)


def test_silence_is_embedded_without_failing(encoder):
    quiet = np.random.default_rng(0).normal(0, 1e-4, 16000).astype(np.float32)
    e = encoder.embed_utterance(quiet)  # the VAD trims everything: embedded untrimmed
    assert e.shape == (256,) and np.isfinite(e).all()


@pytest.mark.parametrize("seconds", [0.03, 0.2, 0.4])
def test_a_clip_shorter_than_the_vads_window_is_embedded(encoder, seconds):
    # a 0.2 s utterance once failed in the silence trimming (a mask longer than the clip)
    clip = voiced(seconds)
    e = encoder.embed_utterance(clip)
    assert e.shape == (256,) and np.isfinite(e).all() and abs(float(np.linalg.norm(e)) - 1.0) < 1e-4


@pytest.mark.parametrize(
    "n, starts",
    [(8000, [0]), (25600, [0]), (40000, [0, 77]), (80000, [0, 77, 154, 231, 308]), (123457, list(range(0, 617, 77)))],
)
def test_partial_slices_are_resemblyzers(n, starts):
    assert frontend.partial_slices(n) == [(s, s + 160) for s in starts]


def test_mel_filters_are_librosas():
    m = frontend.mel_filters()
    assert m.shape == (40, 201)
    # librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    assert m[0].sum() == pytest.approx(0.02480904, rel=1e-5)
    assert m[20].sum() == pytest.approx(0.025219752, rel=1e-5)
    assert m[39].max() == pytest.approx(0.0017249404, rel=1e-5)
    assert int(np.argmax(m[10])) == 20


def test_mel_spectrogram_frames_and_a_tone():
    tone = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    mel = frontend.mel_spectrogram(tone)
    assert mel.shape == (101, 40)
    assert mel[50].argmax() == frontend.mel_filters()[:, 25].argmax()  # 1 kHz: FFT bin 25 (40 Hz apart)


# A checkpoint written without torch: a fake `torch` module only while pickling, so that the
# pickle names torch's globals as torch.save does.


class _FakeStorage:
    def __init__(self, key, array):
        self.key, self.array = key, array


def _fake_torch():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = FloatStorage, _rebuild_tensor_v2, utils
    return torch, utils


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, {})

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _FakeStorage):
            return ("storage", sys.modules["torch"].FloatStorage, obj.key, "cpu", obj.array.size)
        return None


def _write(path, fmt, state, storages, monkeypatch):
    torch, utils = _fake_torch()
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    if fmt == "zip":
        import io

        buf = io.BytesIO()
        _Pickler(buf, protocol=2).dump(state)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            for s in storages:
                z.writestr(f"archive/data/{s.key}", s.array.astype("<f4").tobytes())
    else:
        with open(path, "wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
                pickle.dump(header, f, protocol=2)
            _Pickler(f, protocol=2).dump(state)
            pickle.dump([s.key for s in storages], f, protocol=2)
            for s in storages:
                f.write(np.int64(s.array.size).tobytes() + s.array.astype("<f4").tobytes())


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_checkpoints_of_both_formats_read_into_numpy(tmp_path, monkeypatch, fmt):
    from collections import OrderedDict

    a = _FakeStorage("0", np.arange(12, dtype=np.float32))
    b = _FakeStorage("1", np.array([5.0, 6.0], np.float32))
    state = {
        "step": 3,
        "model_state": OrderedDict(
            [
                ("w", _Tensor(a, 0, (3, 4), (4, 1))),
                ("wt", _Tensor(a, 0, (4, 3), (1, 4))),
                ("b", _Tensor(b, 1, (1,), (1,))),
            ]
        ),
    }
    path = tmp_path / "ckpt.pt"
    _write(path, fmt, state, [a, b], monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and list(loaded["model_state"]) == ["w", "wt", "b"]
    assert np.array_equal(loaded["model_state"]["w"], np.arange(12).reshape(3, 4))
    assert np.array_equal(loaded["model_state"]["wt"], np.arange(12).reshape(3, 4).T)
    assert np.array_equal(loaded["model_state"]["b"], [6.0])


def test_a_checkpoint_that_asks_for_anything_else_is_refused(tmp_path):
    import os

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"x": os.getcwd}, protocol=2))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
