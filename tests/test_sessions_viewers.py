"""`livetranslate sessions` shows how many viewers follow each live session now: the pipeline's
store counts its viewers where the `sessions` model (another process) reads them, in files of
the data directory or in Redis, and a dead server's viewers stop counting."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from click.testing import CliRunner
from redisd import RedisServer

from livetranslate.pipeline import follow
from livetranslate.protocol import Event, EventKind
from livetranslate.store import Hub, SessionStore, Viewer, session_report
from livetranslate.store.watching import EXPIRY_S, PREFIX, ViewerCountFile, read_viewer_counts


def listed(store) -> dict[str, int]:
    """session -> viewers, as the `sessions` model answers `list`."""
    return {info["name"]: info["viewers"] for info in json.loads(session_report(store, "list"))}


def viewer_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(PREFIX))


# --- the local store --------------------------------------------------------------------------
def test_the_list_counts_the_viewers_of_the_pipelines_store(tmp_path):
    serving = SessionStore(tmp_path, hub=Hub(), exclusive=True)  # the pipeline's
    reader = SessionStore(tmp_path)  # the `sessions` model's: no hub, no lock, another process
    for name in ("standup", "review", "done"):
        serving.open(name, "de", "en")
    serving.append("done", Event(EventKind.END))
    serving.close("done")
    assert listed(reader) == {"standup": 0, "review": 0, "done": 0} and not viewer_files(tmp_path)
    viewers = [Viewer() for _ in range(3)]
    serving.attach("standup", viewers[0])
    serving.attach("standup", viewers[1])
    serving.attach("review", viewers[2])
    late = Viewer()
    serving.attach("done", late)  # an ended session's history: no live viewers to show
    assert listed(reader) == {"standup": 2, "review": 1, "done": 0}
    assert "viewers" not in json.loads(session_report(reader, "get", "standup"))["info"]  # `list`'s only
    serving.detach("standup", viewers[0])
    serving.detach("standup", Viewer())  # never attached (a viewer of a missing session): nothing
    assert listed(reader)["standup"] == 1
    for session, viewer in (("standup", viewers[1]), ("review", viewers[2]), ("done", late)):
        serving.detach(session, viewer)
    assert listed(reader) == {"standup": 0, "review": 0, "done": 0}
    assert viewer_files(tmp_path) == []  # the last viewer gone: the file too
    assert serving._watching._beat is None  # and its heartbeat (a thread) until the next one
    serving.attach("standup", Viewer())
    assert len(viewer_files(tmp_path)) == 1
    serving.shutdown()  # the server stops: its viewers are gone
    assert viewer_files(tmp_path) == [] and listed(reader)["standup"] == 0


def test_a_viewer_following_a_session_is_counted_until_it_leaves(tmp_path):
    serving, reader = SessionStore(tmp_path, hub=Hub()), SessionStore(tmp_path)
    serving.open("s", "de", "en")
    sent, closed = [], threading.Event()

    class Reply:
        def send(self, event):
            sent.append(event)

        def close(self):
            closed.set()

    thread = threading.Thread(target=follow, args=(serving, "s", Reply()), kwargs={"poll_s": 0.05})
    thread.start()
    deadline = time.monotonic() + 5
    while listed(reader)["s"] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listed(reader)["s"] == 1
    serving.append("s", Event(EventKind.END))
    thread.join(5)
    assert closed.is_set() and listed(reader)["s"] == 0


def test_stale_and_broken_count_files_count_for_nothing(tmp_path):
    now = 1_000_000.0
    for name, record in (
        (f"{PREFIX}1-a.json", {"at": now - 1, "sessions": {"s": 2, "t": 1}}),
        (f"{PREFIX}2-b.json", {"at": now - 5, "sessions": {"s": 3}}),  # another process: added up
        (f"{PREFIX}3-c.json", {"at": now - EXPIRY_S - 1, "sessions": {"s": 50}}),  # its process died
        (f"{PREFIX}4-d.json", {"at": now, "sessions": {"s": "many", "u": -4, "v": 1.5}}),
        (f"{PREFIX}5-e.json", {"sessions": {"s": 7}}),
        (f"{PREFIX}6-f.json", {"at": float("nan"), "sessions": {"s": 7}}),
        ("s.meta.json", {"at": now, "sessions": {"s": 9}}),  # not a count file
    ):
        (tmp_path / name).write_text(json.dumps(record))
    (tmp_path / f"{PREFIX}7-g.json").write_text('{"at": 1000000, "sessions": {"s"')  # torn
    assert read_viewer_counts(tmp_path, now=now) == {"s": 5, "t": 1}
    assert read_viewer_counts(tmp_path / "missing", now=now) == {}


def test_the_heartbeat_keeps_the_counts_fresh(tmp_path):
    clock = [100.0]
    counts = {"s": 2}
    file = ViewerCountFile(tmp_path, lambda: dict(counts), heartbeat_s=3600, clock=lambda: clock[0])
    file.changed()
    assert read_viewer_counts(tmp_path, now=100.0) == {"s": 2}
    assert os.stat(file.path).st_mode & 0o777 == 0o600  # session names are private too
    clock[0] = 100.0 + EXPIRY_S * 2
    assert read_viewer_counts(tmp_path, now=clock[0]) == {}  # nobody rewrote it: stale
    file.refresh()  # what the heartbeat does
    assert read_viewer_counts(tmp_path, now=clock[0]) == {"s": 2}
    counts.clear()
    file.changed()
    assert not file.path.exists()
    file.stop()
    file.changed()  # after stop: nothing is written again
    assert not file.path.exists()


def test_a_full_disk_never_fails_a_viewer(tmp_path, monkeypatch):
    file = ViewerCountFile(tmp_path / "gone", lambda: {"s": 1}, heartbeat_s=3600)
    file.changed()  # the directory is missing: logged, not raised
    file.stop()


_HOLDER = """
import sys, time
from livetranslate.store import Hub, SessionStore, Viewer
store = SessionStore(sys.argv[1], hub=Hub(), exclusive=True)
store.open("s", "de", "en")
store.attach("s", Viewer())
store.attach("s", Viewer())
print("ready", flush=True)
time.sleep(60)
"""


def test_a_crashed_servers_viewers_stop_counting(tmp_path):
    """The pipeline in a process of its own, killed: its file stays behind, and counts for
    nothing once its heartbeat is overdue."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        reader = SessionStore(tmp_path)
        assert listed(reader) == {"s": 2}
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert len(viewer_files(tmp_path)) == 1  # left behind by the crash
        assert read_viewer_counts(tmp_path, now=time.time() + EXPIRY_S + 1) == {}
    finally:
        holder.kill()
        holder.wait(10)


# --- Redis ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def url(redis_url):
    return f"{redis_url}?prefix=v{uuid.uuid4().hex[:8]}:"


def test_the_list_counts_the_viewers_of_every_server_on_one_redis(url):
    from livetranslate.store import open_store
    from livetranslate.store.redis_store import RedisSessionStore

    a, b = (RedisSessionStore(url, Hub(), serving=True, lease_s=0.3) for _ in range(2))
    reader = open_store(url)  # the `sessions` model's: no hub, no leases
    try:
        a.open("s", "de", "en")
        a.open("done", "de", "en")
        a.append("done", Event(EventKind.END))
        a.close("done")
        assert listed(reader) == {"s": 0, "done": 0}
        on_a, on_b = Viewer(), [Viewer(), Viewer()]
        a.attach("s", on_a)  # the speaker's server
        for viewer in on_b:  # another one
            b.attach("s", viewer)
        b.attach("done", Viewer())
        assert listed(reader) == {"s": 3, "done": 0}
        b.detach("s", on_b[0])
        assert listed(reader)["s"] == 2
        time.sleep(1.2)  # past 3 leases: the renewals keep the counts of live servers
        assert listed(reader)["s"] == 2
        b._stop.set()  # b dies: nothing renews its counts any more
        deadline = time.monotonic() + 5
        while listed(reader)["s"] != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listed(reader)["s"] == 1
        a.detach("s", on_a)
        assert listed(reader)["s"] == 0
    finally:
        for store in (a, b, reader):
            store.shutdown()


# --- the command ------------------------------------------------------------------------------
def test_the_sessions_command_shows_viewers_of_live_sessions(monkeypatch):
    from livetranslate import cli
    from livetranslate.cli import sessions as command

    base = {"counts": {"transcript": 3}, "source_language": "de", "target_language": "en", "languages": ["en"]}
    now = time.time()
    infos = [
        {**base, "name": "standup", "state": "live", "started_at": now - 60, "ended_at": None, "viewers": 12},
        {**base, "name": "weekly", "state": "ended", "started_at": now - 900, "ended_at": now - 800, "viewers": 0},
        {**base, "name": "older", "state": "live", "started_at": now - 999, "ended_at": None},  # an older server
    ]

    class Client:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def sessions(self, action):
            assert action == "list"
            return infos

    monkeypatch.setattr(command, "open_client", lambda *args: Client())
    out = CliRunner().invoke(cli.main, ["sessions"])
    assert out.exit_code == 0, out.output
    header, *rows = out.output.splitlines()
    assert header.split() == ["session", "state", "started", "duration", "lines", "viewers", "languages"]
    column = header.index("viewers") + len("viewers")  # right-aligned under its header
    assert [row[column - 7 : column].strip() for row in rows] == ["12", "-", "-"]
    assert all(row.endswith("de->en") for row in rows)
