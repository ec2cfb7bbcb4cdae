import pytest

from livetranslate.weights.catalog import MODELS, ModelError, ModelSpec, resolve, sha256_of


def test_a_mismatching_checksum_is_refused(tmp_path):
    def assemble(folder):
        (folder / "w.bin").write_bytes(b"not the real weights")

    spec = ModelSpec("fake", "whisper", "", "w.bin", "0" * 64, assemble)
    with pytest.raises(ModelError, match="does not match"):
        spec.fetch(tmp_path)
    assert not spec.path(tmp_path).exists() and not spec.is_ready(tmp_path)


def test_fetch_verifies_and_is_idempotent(tmp_path):
    calls = []

    def assemble(folder):
        calls.append(folder)
        (folder / "w.bin").write_bytes(b"weights")

    import hashlib

    spec = ModelSpec("ok", "llm", "", "w.bin", hashlib.sha256(b"weights").hexdigest(), assemble)
    path = spec.fetch(tmp_path)
    assert spec.is_ready(tmp_path) and sha256_of(path / "w.bin") == spec.sha256
    spec.fetch(tmp_path)
    assert len(calls) == 1


def test_resolve(tmp_path):
    assert resolve(str(tmp_path)) == tmp_path
    with pytest.raises(ModelError, match="neither a known model"):
        resolve("/no/such/model")


def test_default_whisper_is_assembled_and_verified():
    # installed by scripts/setup.sh (`livetranslate models fetch`)
    assert MODELS["whisper-base"].is_ready()
    assert (resolve("whisper-base") / "model.bin").stat().st_size > 50_000_000
