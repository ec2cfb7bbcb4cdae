"""Starts the Triton server shipped in the nvidia-pytriton wheel on our model repository.

The wheel carries `tritonserver`, the Python backend and one backend stub per Python
version. The stub must match the Python that runs the models, and it picks its prefix from
the first `python3` on PATH: so the launcher copies the backend into a writable folder with
the right stub and starts Triton with this environment's `bin/` first on PATH."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from livetranslate import settings


class ServerError(RuntimeError):
    pass


def pytriton_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise ServerError("nvidia-pytriton is not installed: it provides the tritonserver binary")
    return Path(spec.origin).parent


# A Triton installed otherwise (the gpu image's, with the TensorRT-LLM backend) replaces the
# one inside the nvidia-pytriton wheel: its binary and its backends folder, used as they are.
TRITONSERVER_ENV = "LIVETRANSLATE_TRITONSERVER"


BACKEND_DIR_ENV = "LIVETRANSLATE_BACKEND_DIR"


def system_triton() -> tuple[Path, Path] | None:
    binary, backends = settings.get(TRITONSERVER_ENV), settings.get(BACKEND_DIR_ENV)
    if not binary:
        return None
    if not Path(binary).is_file() or not backends or not Path(backends).is_dir():
        raise ServerError(
            f"{TRITONSERVER_ENV}={binary} needs an existing binary and {BACKEND_DIR_ENV} set to its backends folder"
        )
    return Path(binary), Path(backends)


def find_tritonserver() -> Path:
    if triton := system_triton():
        return triton[0]
    binary = pytriton_dir() / "tritonserver" / "bin" / "tritonserver"
    if not binary.is_file():
        raise ServerError(f"tritonserver not found at {binary}")
    return binary


def triton_libs() -> Path:
    return pytriton_dir().parent / "nvidia_pytriton.libs"


def settled(states: dict[str, str]) -> bool:
    """Every model has finished loading, one way or the other."""
    return bool(states) and all(not s.startswith(("LOADING", "UNLOADING")) for s in states.values())


def own_libpython_dir() -> str:
    """The folder of this Python's own shared libpython, when it has one outside the system's
    (pyenv, a custom build). The backend stub links `libpython3.X.so.1.0` and would otherwise
    load the system's: another patch release than the standard library it then uses, whose
    extension modules may not load (Debian's 3.11.2 refuses pyenv 3.11.7's `_ssl`)."""
    import sysconfig

    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or libdir in ("/usr/lib", "/usr/lib64", "/lib"):
        return ""
    return libdir if Path(libdir, sysconfig.get_config_var("INSTSONAME") or "").is_file() else ""


def prepare_backends(cache_dir: Path) -> Path:
    """A backends folder whose python backend has the stub for this Python."""
    source = pytriton_dir() / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise ServerError(f"the nvidia-pytriton wheel has no Python backend stub for Python {version}")
    backends = cache_dir / f"backends-py{version}"
    python = backends / "python"
    if not (python / "triton_python_backend_stub").is_file():
        staging = cache_dir / f".backends-py{version}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source / "backends" / "python", staging / "python")
        shutil.copy2(stub, staging / "python" / "triton_python_backend_stub")
        shutil.rmtree(backends, ignore_errors=True)
        staging.rename(backends)
    return backends
