"""The terminal view for real: `livetranslate stream` and `livetranslate watch` in tmux at 80
and 200 columns against the real server, read back with `tmux capture-pane` (-e: with the
escapes the terminal got). Lines fit the width, nothing is indented beyond the right
column, finished text is in normal weight, the status line says the latency the server
measured, and Ctrl-C ends each with its one-line summary and exit code 130."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from test_textview import dimmed, visible

from livetranslate.present.readable import CORRECTED_NAME, DRAFT_NAME, IMPROVED_NAME

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup.sh installs it)"),
]

CLI = [sys.executable, "-m", "livetranslate.cli"]
HEIGHT = 40
ROW = re.compile(r"^#\d+ \S")  # a row of the view starts at the margin with its segment id
QUIET = re.compile(rf"#\d+(-\d+)?|│|…|\((?:{IMPROVED_NAME}|{CORRECTED_NAME}|{DRAFT_NAME}|failed: [^)]*)\)")


class Tmux:
    """A tmux server of this test's own, its panes WIDTH columns wide."""

    def __init__(self, width: int):
        self.socket, self.width = f"lt-test-{uuid.uuid4().hex[:8]}", width

    def run(self, *args: str) -> str:
        # os.environ given explicitly: pytest's readline left COLUMNS=80 in the C environment,
        # which a child would otherwise inherit (and a terminal program believe)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, env=env
        ).stdout

    def start(self, name: str, argv: list[str]) -> None:
        # the pane stays after the command, so that its last lines and exit code can be read
        shell = f"{shlex.join(argv)}; echo EXIT=$?; sleep 600"
        self.run("new-session", "-d", "-s", name, "-x", str(self.width), "-y", str(HEIGHT), shell)

    def capture(self, name: str, escapes: bool = False) -> list[str]:
        """Every line of the pane, its scrollback too; a line the terminal wrapped is one line."""
        args = ["capture-pane", "-p", "-J", "-S", "-", "-t", f"={name}:"] + (["-e"] if escapes else [])
        return [line.rstrip(" ") for line in self.run(*args).rstrip("\n").split("\n")]

    def wait(self, name: str, check, timeout_s: float, what: str) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lines = self.capture(name)
            if check(lines):
                return lines
            time.sleep(0.25)
        raise AssertionError(f"no {what} within {timeout_s} s; the pane:\n" + "\n".join(self.capture(name)))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def rows(lines: list[str]) -> int:
    return sum(bool(ROW.match(line)) for line in lines)


def check_layout(lines: list[str], colored: list[str], width: int) -> None:
    """Every line fits; a line that starts with spaces is the right column going on; the text
    of finished rows is not dimmed (only the id, the bar and quiet marks are)."""
    bar = (width - 3) // 2  # the left column's width, then " │ "
    assert all(len(visible(line)) <= width for line in colored), [line for line in lines if len(line) > width]
    for line in lines:
        if line.startswith(" "):
            assert line[bar : bar + 2] == " │", f"indented beyond the right column: {line!r}"
    for line in lines:
        if ROW.match(line) and width >= 2 * 20 + 3:  # two columns: the bar where the width puts it
            assert line.index("│") == bar + 1, f"not in the columns of {width}: {line!r}"
    for line in colored:
        if ROW.match(visible(line)) or visible(line)[bar : bar + 2] == " │":
            quiet = QUIET.sub("", dimmed(line)).strip()
            assert quiet == "", f"finished text dimmed: {quiet!r} in {visible(line)!r}"
    assert any(dimmed(line).startswith("#") for line in colored)  # the ids are quiet: dim is seen


@pytest.mark.parametrize("width", [80, 200])
def test_stream_and_watch_in_a_terminal(server, audio_files, width):
    name = f"t{width}-{uuid.uuid4().hex[:6]}"
    url = ["--url", server.grpc_url]
    tmux = Tmux(width)
    try:
        tmux.start("speaker", CLI + ["stream", str(audio_files["speech"]), "--realtime", "--session", name] + url)
        tmux.wait("speaker", lambda lines: rows(lines) >= 1, 90, "first row from the speaker")
        tmux.start("viewer", CLI + ["watch", name] + url)
        # the status line: the latency the server measured, as soon as the first row is shown
        status = tmux.wait(
            "viewer",
            lambda lines: rows(lines) >= 2 and any("latency: transcript" in line for line in lines),
            90,
            "two rows and the latency in the viewer",
        )
        found = [line for line in status if "latency: transcript" in line]
        assert len(found) == 1, "\n".join(status)  # one status line: the live area is redrawn in place
        [latency] = found
        measured = float(re.search(r"latency: transcript (\d+\.\d) s", latency).group(1))
        assert measured > 0, latency

        tmux.run("send-keys", "-t", "=viewer:", "C-c")
        viewer = tmux.wait("viewer", lambda lines: any(line.startswith("EXIT=") for line in lines), 30, "viewer exit")
        tmux.run("send-keys", "-t", "=speaker:", "C-c")
        speaker = tmux.wait(
            "speaker", lambda lines: any(line.startswith("EXIT=") for line in lines), 60, "speaker exit"
        )

        for pane, lines in (("viewer", viewer), ("speaker", speaker)):
            text = "\n".join(lines)
            assert "Aborted!" not in text and "Traceback" not in text, text
            ended = [line for line in lines if line.strip()][-2:]
            summary = rf"session {name}: \d+ lines? in \d+ s, stored \(livetranslate export {name}\)"
            assert re.fullmatch(summary, ended[0]) and ended[1] == "EXIT=130", (pane, ended)
            check_layout(lines, tmux.capture(pane, escapes=True), width)
        assert rows(viewer) >= 2 and rows(speaker) >= 2
        assert any("-- stopping: finishing the open utterance" in line for line in speaker)
        assert any(line.startswith("-- end of stream") for line in speaker)  # the open utterance was finished
    finally:
        tmux.close()


def test_a_huge_hostile_correction_keeps_the_layout(server, audio_files):
    """An organiser's correction of 2,000 characters (the most there is), with control
    characters in it: `watch` shows it wrapped in its column, marked, in 80 columns."""
    from livetranslate.client import Connection, PipelineClient
    from livetranslate.client.actions import edit

    name = f"edit-{uuid.uuid4().hex[:6]}"
    spoken = subprocess.run(
        CLI
        + ["stream", str(audio_files["speech_b"]), "--session", name, "--url", server.grpc_url, "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert spoken.returncode == 0, spoken.stderr
    hostile = "Guten \x1b[31mTag\x1b[0m \x9b2J \x07\x1b]0;title\x07 " + "Wort " * 390
    with PipelineClient(Connection(server.grpc_url)) as client:
        edit(client, name, 0, hostile[:2000])
    tmux = Tmux(80)
    try:
        tmux.start("viewer", CLI + ["watch", name, "--url", server.grpc_url])
        lines = tmux.wait("viewer", lambda lines: any(line.startswith("EXIT=") for line in lines), 60, "the end")
        colored = tmux.capture("viewer", escapes=True)
        assert lines[-1] == "EXIT=0" and "Traceback" not in "\n".join(lines), lines
        check_layout(lines, colored, 80)
        [corrected] = [i for i, line in enumerate(lines) if line.startswith("#0 Guten")]
        assert "Tag" in lines[corrected] and "title" in lines[corrected]
        tall = [line for line in lines[corrected:] if line.startswith("Wort")]
        assert len(tall) > HEIGHT  # taller than the terminal, and still in its column
        assert any(f"({CORRECTED_NAME})" in line for line in lines[corrected:])
        assert not any("\x07" in line or "\x9b" in line for line in colored)
    finally:
        tmux.close()
