import os
import re
import socket
from pathlib import Path

import pytest
from hypothesis import settings

# The suite's property tests draw the same examples on every run (a red CI must name a
# defect, not a lucky draw); HYPOTHESIS_PROFILE=explore draws new ones while developing.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from livetranslate.quality.samples import make_all

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"


def launch_chromium(pw, *extra_args: str):
    """The system's Chromium, headless, quiet (no sandbox, GPU, sync or update checks), with
    the test's own switches after those."""
    return pw.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            *extra_args,
        ],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def audio_files() -> dict[str, Path]:
    """espeak-ng German speech with pauses and low noise, and a silence file."""
    return make_all(ROOT / ".cache" / "test-audio")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real Triton server on the cpu profile, on free ports, for the whole session."""
    from livetranslate.launcher import ServerOptions, TritonServer

    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "triton-test.log"
    log.unlink(missing_ok=True)
    # The tests use the small, fast LLM; the default (Qwen 1.5B) is measured in bench/.
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        llm="gemma3-270m",
        data_dir=tmp_path_factory.mktemp("sessions"),
    )
    with TritonServer(options, log_file=log) as srv:
        failed = {name: state for name, state in srv.failed_models().items() if state.startswith("UNAVAILABLE")}
        assert not failed, f"models failed to load: {failed}; Triton's log ends:\n{srv.log_tail(20)}"
        yield srv


@pytest.fixture(scope="session")
def whisper_engine():
    from livetranslate.stages.whisper import create_engine
    from livetranslate.weights.catalog import resolve

    return create_engine("ctranslate2", resolve("whisper-base"))


_LOG_SIZES: dict[Path, int] = {}
_WORTH_SEEING = (
    "not healthy",
    "reloaded",
    "died",
    "Signal",
    "Illegal",
    "Segmentation",
    "Killed",
    "made no progress",
    "llm stall",
)
_ORDERLY_STOP = re.compile(r"Signal \((2|15)\) received")


def pytest_sessionstart(session):
    _LOG_SIZES.update({log: log.stat().st_size for log in ARTIFACTS.glob("triton-*.log")})


def pytest_unconfigure(config):
    """What Triton said about its stub processes in this run (a crash, a starved stub, a hung
    LLM call), so that a failure on a CI host can be told from a wrong answer. Last, after
    the summary line: where a CI log is cut, its end is kept."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None:
        return
    lines = []
    for log in sorted(ARTIFACTS.glob("triton-*.log")):
        with open(log, "rb") as f:
            f.seek(_LOG_SIZES.get(log, 0) if log.stat().st_size >= _LOG_SIZES.get(log, 0) else 0)
            for line in f.read().decode("utf-8", "replace").splitlines():
                if any(word in line for word in _WORTH_SEEING) and not _ORDERLY_STOP.search(line):
                    lines.append(f"{log.name}: {line[:600]}")
    if lines:
        terminalreporter.section("Triton stub events in this run")
        for line in lines[-40:]:
            terminalreporter.write_line(line)
