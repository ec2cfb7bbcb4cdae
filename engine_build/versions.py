"""The one pinned release pair of the gpu profile.

The TensorRT-LLM that builds the engines must be the one the server runs: an engine built by
another version fails to load or, worse, loads and misbehaves (the seed's worst pitfall).
The Dockerfile's ARGs carry the same values (tests/test_gpu_profile.py checks they agree);
the build refuses to run under any other TensorRT-LLM.
"""

from __future__ import annotations

from pathlib import Path

from livetranslate.weights.trtllm_version import VersionMismatch, check_engine_version, engine_version, release

# nvcr.io/nvidia/tritonserver:25.01-trtllm-python-py3: Triton 2.54.0, TensorRT-LLM 0.17.0,
# TensorRT 10.8, CUDA 12.8, Python 3.12 (NVIDIA's Triton/TRT-LLM release compatibility matrix).
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver"
TRITON_RELEASE = "25.01"
TRITON_IMAGE_TAG = f"{TRITON_RELEASE}-trtllm-python-py3"
TRITON_SERVER_VERSION = "2.54.0"
TENSORRT_LLM_VERSION = "0.17.0"
# The tensorrtllm_backend tag of the same release: its all_models/inflight_batcher_llm
# templates and tools/fill_template.py are fetched at image build time, never copied here.
TENSORRTLLM_BACKEND_TAG = "v0.17.0"
# TensorRT-LLM's examples (convert_checkpoint.py for Whisper and LLaMA) at the same tag.
TENSORRT_LLM_TAG = "v0.17.0"
WHISPER_EXAMPLE = "examples/whisper"  # moved to examples/models/core/whisper in 0.19
LLAMA_EXAMPLE = "examples/llama"

# Where the image puts the fetched sources (Dockerfile) and the build finds them.
SOURCES_DIR = Path("/opt/livetranslate-trtllm")
BACKEND_SOURCES = SOURCES_DIR / "tensorrtllm_backend"
TENSORRT_LLM_SOURCES = SOURCES_DIR / "TensorRT-LLM"


def installed_tensorrt_llm() -> str | None:
    """The TensorRT-LLM version installed here, without importing it (that takes seconds
    and needs a GPU driver)."""
    from importlib import metadata

    for name in ("tensorrt_llm", "tensorrt-llm"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_build_version(installed: str | None, server: str = TENSORRT_LLM_VERSION) -> None:
    """Refuses to build unless the builder's TensorRT-LLM is the server's."""
    if installed is None:
        raise VersionMismatch(
            f"TensorRT-LLM is not installed here: build inside the gpu image "
            f"({TRITON_IMAGE}:{TRITON_IMAGE_TAG}, TensorRT-LLM {server})"
        )
    if release(installed) != release(server):
        raise VersionMismatch(
            f"TensorRT-LLM {installed} is installed here but the server runs {server}: engines "
            f"built by one version do not load in another. Build inside the gpu image "
            f"({TRITON_IMAGE}:{TRITON_IMAGE_TAG}) or pass --server-tensorrt-llm to say which "
            f"version the server runs"
        )


__all__ = ["VersionMismatch", "check_build_version", "check_engine_version", "engine_version", "installed_tensorrt_llm"]
