"""What is added to a session afterwards, end to end on a real server: a reader who joins
late gets the meeting so far in French; an organiser corrects a line (`livetranslate edit`)
and the readers still connected see it, and exports use it; a summary made by the default
LLM (Qwen 2.5 1.5B: the tests' small Gemma is a completion model, and is refused plainly)."""

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from livetranslate.audio import chunks, read_audio
from livetranslate.client import ClientError, PipelineClient
from livetranslate.protocol import EventKind, SessionOptions

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "livetranslate.cli"]


def cli(*args, check=True, timeout=300):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, check=check)


def of(events, kind, language=None):
    return [e for e in events if e.kind == kind and language in (None, e.language)]


class Speaker(threading.Thread):
    """Streams a file into session `name` in real time; `events` fill as they come."""

    def __init__(self, url: str, path, name: str):
        super().__init__()
        self.url, self.path, self.name, self.events = url, path, name, []

    def run(self):
        pcm, rate = read_audio(self.path)
        with PipelineClient(self.url) as client:
            for event in client.stream(chunks(pcm, rate // 10), SessionOptions(self.name, rate), realtime=True):
                self.events.append(event)

    def wait_for(self, n_transcripts: int, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(of(self.events, EventKind.TRANSCRIPT)) < n_transcripts:
            assert self.is_alive() and time.monotonic() < deadline, self.events[-3:]
            time.sleep(0.1)


class Reader(threading.Thread):
    def __init__(self, url: str, name: str, language=None):
        super().__init__()
        self.url, self.name, self.language, self.events = url, name, language, []
        self.at: list[float] = []  # when each event came

    def run(self):
        with PipelineClient(self.url) as client:
            for event in client.watch(self.name, language=self.language):
                self.events.append(event)
                self.at.append(time.monotonic())


def test_a_reader_who_joins_late_gets_the_meeting_so_far_in_french_before_it_ends(server, audio_files):
    name = f"late-{uuid.uuid4().hex[:8]}"
    speaker = Speaker(server.grpc_url, audio_files["speech"], name)
    speaker.start()
    speaker.wait_for(3)
    before = [e.segment_id for e in of(speaker.events, EventKind.TRANSCRIPT)]
    reader = Reader(server.grpc_url, name, "fr")
    reader.start()
    speaker.join(180)
    reader.join(120)
    assert speaker.events[-1].kind == EventKind.END and not speaker.events[-1].error
    assert reader.events[-1].kind == EventKind.END
    french = {e.segment_id: e for e in of(reader.events, EventKind.TRANSLATION)}
    assert {e.language for e in french.values()} == {"fr"}
    # every line spoken before the join came in French, as a translation event, before the end
    assert set(before) <= set(french), (before, sorted(french))
    made = [french[s] for s in before if not french[s].error]
    assert len(made) >= len(before) - 1, [french[s] for s in before]  # the CPU may time one out
    english = {e.segment_id: e.text for e in of(speaker.events, EventKind.TRANSLATION)}
    assert all(e.text != english[e.segment_id] for e in made)
    # the speaker's own translations never waited for the catching up: each is there
    assert len(english) == len(of(speaker.events, EventKind.TRANSCRIPT))
    listed = cli("sessions", "--url", server.grpc_url).stdout
    assert any(name in line and "(+fr)" in line for line in listed.splitlines()), listed


def test_an_organiser_corrects_a_line_and_readers_exports_and_the_log_follow(server, audio_files):
    name = f"edit-{uuid.uuid4().hex[:8]}"
    speaker = Speaker(server.grpc_url, audio_files["speech_b"], name)
    reader = None
    speaker.start()
    speaker.wait_for(1)
    reader = Reader(server.grpc_url, name)  # a reader still connected when the correction comes
    reader.start()
    first = of(speaker.events, EventKind.TRANSCRIPT)[0]
    fixed = "Können wir das Treffen auf Mittwoch verschieben?"
    out = cli("edit", name, str(first.segment_id), fixed, "--url", server.grpc_url)
    assert f"#{first.segment_id} [de] {fixed}" in out.stdout
    assert f"#{first.segment_id} [en] " in out.stdout
    speaker.join(180)
    reader.join(120)
    seen = of(reader.events, EventKind.CORRECTION)
    assert [(e.segment_id, e.language) for e in seen] == [(first.segment_id, "de"), (first.segment_id, "en")]
    assert seen[0].text == fixed and "wednesday" in seen[1].text.lower(), seen[1]

    text = cli("export", name, "--url", server.grpc_url, "--lang", "both").stdout
    assert fixed in text and first.text not in text
    assert first.text in cli("export", name, "--url", server.grpc_url, "--text", "first").stdout
    log = [
        json.loads(line)
        for line in cli("export", name, "--url", server.grpc_url, "--format", "jsonl").stdout.splitlines()
    ]
    kinds = [(e["kind"], e["segment_id"]) for e in log]
    assert ("transcript", first.segment_id) in kinds and ("correction", first.segment_id) in kinds  # beside it

    # plain answers: a line that is not there, a session that is not there, bad text
    wrong = cli("edit", name, "99", "x", "--url", server.grpc_url, check=False)
    assert wrong.returncode == 1 and "has no line #99" in wrong.stderr and "Traceback" not in wrong.stderr
    typo = cli("edit", name[:-1], "0", "x", "--url", server.grpc_url, check=False)
    assert typo.returncode == 1 and f"did you mean '{name}'" in typo.stderr
    long = cli("edit", name, str(first.segment_id), "a" * 10_000, "--url", server.grpc_url, check=False)
    assert long.returncode == 1 and "at most 2000 characters" in long.stderr
    markup = "<script>alert(1)</script> ist kein Code"
    cli("edit", name, str(first.segment_id), markup, "--url", server.grpc_url)
    assert markup in cli("export", name, "--url", server.grpc_url, "--lang", "source").stdout  # text, as said


def test_a_completion_model_is_refused_a_summary_in_plain_words(server, audio_files):
    name = f"nosummary-{uuid.uuid4().hex[:8]}"
    speaker = Speaker(server.grpc_url, audio_files["speech_b"], name)
    speaker.run()
    out = cli("summary", name, "--url", server.grpc_url, check=False)
    assert out.returncode == 1 and "cannot summarize" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory):
    """A server with the default LLM, which follows instructions."""
    from conftest import ARTIFACTS, free_port

    from livetranslate.launcher import ServerOptions, TritonServer

    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        host="127.0.0.1",
        data_dir=tmp_path_factory.mktemp("qwen-sessions"),
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-qwen.log") as srv:
        yield srv


def test_a_summary_names_what_was_said_and_is_kept_with_the_session(qwen_server, audio_files):
    name = f"summary-{uuid.uuid4().hex[:8]}"
    Speaker(qwen_server.grpc_url, audio_files["speech_b"], name).run()  # reschedule, report, thanks
    out = cli("summary", name, "--url", qwen_server.grpc_url)
    text = out.stdout
    print(text)
    assert text.startswith("Summary: ") and "\nDecisions:\n" in text and "\nAction items:\n" in text
    assert "tuesday" in text.lower() or "report" in text.lower(), text
    with PipelineClient(qwen_server.grpc_url) as client:
        stored = client.sessions("get", name)
    assert [e.text for e in of(stored["events"], EventKind.SUMMARY)] == [text.rstrip("\n")]
    exported = cli("export", name, "--url", qwen_server.grpc_url, "--summary", "--lang", "target").stdout
    assert exported.startswith(text.rstrip("\n") + "\n\n[")
    srt = cli("export", name, "--url", qwen_server.grpc_url, "--summary", "--format", "srt", check=False)
    assert srt.returncode == 1 and "no place for a summary" in srt.stderr
    with pytest.raises(ClientError, match="no session named"):
        with PipelineClient(qwen_server.grpc_url) as client:
            from livetranslate.client import summarize

            summarize(client, "nobody-here")
