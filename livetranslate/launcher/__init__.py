"""The Triton process: its command line, ports, keys, TLS, profiles and health.

options.py   ServerOptions: profile, ports, bind address, keys, TLS, the command and environment
binaries.py  finding tritonserver and preparing the Python backend with the right stub
server.py    TritonServer: a running server, started, watched, drained and stopped
health.py    the launcher's own /ready and /live
shm.py       shared-memory regions the Python backend leaves behind
native/      hide_secrets.so: keys go to tritonserver through the environment, never argv
"""

from __future__ import annotations

from livetranslate.launcher.binaries import ServerError
from livetranslate.launcher.options import (
    CPU_ONLY_MODELS,
    DEFAULT_MODEL_REPOSITORY,
    DRAIN_TIMEOUT_S,
    GPU_ONLY_MODELS,
    MODELS,
    PROFILE_MODELS,
    PROJECT_ROOT,
    ServerOptions,
    default_log_file,
    is_loopback,
    stop_bound_s,
)
from livetranslate.launcher.server import TritonServer

__all__ = [
    "CPU_ONLY_MODELS",
    "DEFAULT_MODEL_REPOSITORY",
    "DRAIN_TIMEOUT_S",
    "GPU_ONLY_MODELS",
    "MODELS",
    "PROFILE_MODELS",
    "PROJECT_ROOT",
    "ServerError",
    "ServerOptions",
    "TritonServer",
    "default_log_file",
    "is_loopback",
    "stop_bound_s",
]
