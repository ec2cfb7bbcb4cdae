import threading

import srt
import webvtt

from livetranslate.pipeline import follow
from livetranslate.present.export import export
from livetranslate.protocol import Event, EventKind
from livetranslate.store import Hub, SessionStore, safe_name, session_report


def ev(kind, text="", seg=0, start=0.0, end=1.0, **kw):
    return Event(kind, text, seg, start, end, **kw)


def test_events_survive_a_new_store_and_a_torn_last_line(tmp_path):
    store = SessionStore(tmp_path)
    store.open("Weekly / Team", "de", "en")
    events = [ev(EventKind.TRANSCRIPT, "Hallo.", 0), ev(EventKind.TRANSLATION, "Hello.", 0, language="en")]
    for e in events:
        store.append("Weekly / Team", e)
    # a crash mid-write: half a line at the end
    log = next(tmp_path.glob("*.jsonl"))
    with open(log, "a") as f:
        f.write('{"kind": "transcript", "text": "Abgeschn')
    again = SessionStore(tmp_path)  # a restarted server
    assert again.events("Weekly / Team") == events
    info = again.info("Weekly / Team")
    assert info.state == "live" and info.source_language == "de"
    again.open("Weekly / Team", "de", "en")  # the client reconnects to the restarted server
    again.append("Weekly / Team", ev(EventKind.END, end=5.0))
    again.close("Weekly / Team")
    assert SessionStore(tmp_path).info("Weekly / Team").state == "ended"
    assert SessionStore(tmp_path).events("Weekly / Team")[-1].kind == EventKind.END


def test_session_names_are_safe_file_names():
    assert safe_name("standup") == "standup"
    assert "/" not in safe_name("../../etc/passwd") and safe_name("a/b") != safe_name("a_b")


def test_list_is_newest_first_and_get_fails_clearly(tmp_path):
    store = SessionStore(tmp_path)
    store.open("old", "de", "en")
    store.open("new", "de", "en")
    import json

    assert [s["name"] for s in json.loads(session_report(store, "list"))][:2] == ["new", "old"]
    try:
        session_report(store, "get", "missing")
        raise AssertionError("expected an error")
    except ValueError as exc:
        assert "no session named 'missing'" in str(exc)


class Collect:
    def __init__(self):
        self.events, self.closed = [], threading.Event()

    def send(self, event):
        self.events.append(event)

    def close(self):
        self.closed.set()


def test_viewer_gets_history_then_live_then_end(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    first = ev(EventKind.TRANSCRIPT, "Eins.", 0)
    store.append("s", first)
    viewer = Collect()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"poll_s": 0.05})
    thread.start()
    live = [ev(EventKind.TRANSCRIPT, "Zwei.", 1), ev(EventKind.END)]
    for e in live:
        store.append("s", e)
    store.close("s")
    thread.join(5)
    assert viewer.closed.is_set() and viewer.events == [first] + live


def test_slow_viewer_is_dropped_not_the_speaker(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    gate = threading.Event()

    class Stuck(Collect):
        def send(self, event):
            gate.wait(5)  # a viewer that does not read
            super().send(event)

    viewer = Stuck()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"max_events": 5, "poll_s": 0.01})
    thread.start()
    store.append("s", ev(EventKind.TRANSCRIPT, "x", 0))  # blocks the viewer thread in send
    for i in range(1, 50):
        store.append("s", ev(EventKind.TRANSCRIPT, "x", i))  # the speaker never waits
    gate.set()
    thread.join(5)
    assert viewer.events[-1].kind == EventKind.END and "fell more than 5 events behind" in viewer.events[-1].error


def test_missing_session_is_an_error_event(tmp_path):
    viewer = Collect()
    follow(SessionStore(tmp_path, hub=Hub()), "nope", viewer)
    assert viewer.events == [Event(EventKind.END, error="no session named 'nope'")]


def test_exports_parse_and_match():
    events = [
        ev(EventKind.TRANSCRIPT, "Guten Morgen.", 0, 0.5, 2.0),
        ev(EventKind.TRANSLATION, "Good morning.", 0, 0.5, 2.0, language="en"),
        ev(EventKind.TRANSCRIPT, "Wie geht's?", 1, 2.5, 4.0),
        ev(EventKind.TRANSLATION, "", 1, 2.5, 4.0, error="translation failed"),
        ev(EventKind.END, end=4.5),
    ]
    subs = list(srt.parse(export(events, "srt", "both")))
    assert [s.content for s in subs] == ["Guten Morgen.\nGood morning.", "Wie geht's?"]
    assert subs[1].start.total_seconds() == 2.5
    assert [c.text for c in webvtt.from_string(export(events, "vtt", "target"))] == ["Good morning."]
    assert export(events, "txt", "source") == "[00:00.5] Guten Morgen.\n[00:02.5] Wie geht's?\n"
    assert len(export(events, "jsonl").splitlines()) == 5


def test_a_crashed_servers_live_sessions_are_ended_on_recovery(tmp_path):
    store = SessionStore(tmp_path)
    store.open("crashed", "de", "en")
    store.append("crashed", ev(EventKind.TRANSCRIPT, "Hallo.", 0))
    store.open("clean", "de", "en")
    store.close("clean")
    again = SessionStore(tmp_path)  # the server after a kill -9
    assert again.recover() == ["crashed"]
    assert again.info("crashed").state == "ended" and again.info("crashed").ended_at is not None
    assert again.events("crashed")[0].text == "Hallo."  # nothing lost
    again.open("crashed", "de", "en")  # a reconnecting client makes it live again
    assert again.info("crashed").state == "live"


def test_a_session_ends_with_its_last_stream(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")  # the stream of a client whose network dropped
    store.open("s", "de", "en")  # the same client, reconnected
    assert store.live_streams("s") == 2
    assert store.close("s") is False and store.info("s").state == "live"  # the old stream timing out
    assert store.close("s") is True and SessionStore(tmp_path).info("s").state == "ended"


def test_a_new_stream_under_an_old_name_goes_on_from_its_segments(tmp_path):
    store = SessionStore(tmp_path)
    assert store.resume_point("s") == (0, 0.0)
    store.open("s", "de", "en")
    store.append("s", ev(EventKind.TRANSCRIPT, "Eins.", 0, 0.5, 2.0))
    store.append("s", ev(EventKind.TRANSCRIPT, "Zwei.", 1, 2.5, 4.0))
    store.append("s", ev(EventKind.END, end=4.5))
    assert store.resume_point("s") == (2, 4.5)


def test_a_viewer_of_a_resumed_session_sees_one_end(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    history = [
        ev(EventKind.TRANSCRIPT, "Eins.", 0),
        ev(EventKind.END, end=1.0),  # the first run
        ev(EventKind.TRANSCRIPT, "Zwei.", 1),
    ]  # the second run, still live
    for e in history:
        store.append("s", e)
    viewer = Collect()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"poll_s": 0.05})
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and [e.text for e in viewer.events] == ["Eins.", "Zwei."]
    last = ev(EventKind.END, end=2.0)
    store.append("s", last)
    store.close("s")
    thread.join(5)
    assert not thread.is_alive() and viewer.events[-1] == last


def test_a_viewer_whose_session_ended_between_history_and_live_still_ends(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    store.open("s", "de", "en")
    store.append("s", ev(EventKind.TRANSCRIPT, "Eins.", 0))
    store.append("s", ev(EventKind.END, end=1.0))  # appended, not yet closed
    viewer = Collect()
    thread = threading.Thread(target=follow, args=(store, "s", viewer), kwargs={"poll_s": 0.05})
    thread.start()
    store.close("s")
    thread.join(5)
    assert not thread.is_alive() and [e.kind for e in viewer.events] == [EventKind.TRANSCRIPT, EventKind.END]


# --- safe to share: Unicode, durability, full disks, one server per directory, retention -------
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from livetranslate import store as store_module
from livetranslate.store import StoreError
from livetranslate.store import files as store_files
from livetranslate.store.files import _dir_bytes, _legacy_name

LINE_BREAKS = "a\u2028b\u2029c\x85d\re\x0bf\x0cg\x1ch\x1di\x1ej\r\nk\nl"


def test_text_with_every_kind_of_line_break_comes_back_whole(tmp_path):
    store = SessionStore(tmp_path)
    store.open("s", "de", "en")
    events = [
        ev(EventKind.TRANSCRIPT, LINE_BREAKS, 0),
        ev(EventKind.TRANSLATION, "\u2028", 0, error="\u2029"),
        ev(EventKind.TRANSCRIPT, "lone \ud800 surrogate", 1),
        ev(EventKind.TRANSCRIPT, "danach", 2),
    ]
    for e in events:
        store.append("s", e)
    log = next(tmp_path.glob("*.jsonl"))
    with open(log, "ab") as f:
        f.write('{"kind": "transcript", "text": "abgeschnitten \u2028'.encode())  # a crash mid-line
    again = SessionStore(tmp_path)  # the restarted server
    assert again.events("s") == events
    again.append("s", ev(EventKind.END))  # goes on after the torn line, on a line of its own
    assert SessionStore(tmp_path).events("s") == events + [ev(EventKind.END)]


@pytest.fixture
def synced(monkeypatch):
    """Every fsync/fdatasync the store makes, by path; the real call still runs."""
    calls = []

    def spy(real):
        def call(fd):
            calls.append(os.readlink(f"/proc/self/fd/{fd}"))
            return real(fd)

        return call

    monkeypatch.setattr(store_files, "_sync_data", spy(store_files._sync_data))
    monkeypatch.setattr(os, "fsync", spy(os.fsync))
    return calls


def test_an_event_is_on_disk_before_a_viewer_gets_it(tmp_path, synced):
    published = []

    class Recording(Hub):
        def publish(self, session, event):
            published.append(list(synced))
            super().publish(session, event)

    store = SessionStore(tmp_path, hub=Recording())
    store.open("s", "de", "en")
    log = str(next(tmp_path.glob("*.jsonl")))
    meta = str(next(tmp_path.glob("*.meta.json")))
    assert synced.count(log) == 1 and synced[-1] == str(tmp_path)  # the header; the renamed metadata
    assert any(p.endswith(".tmp") for p in synced)  # the metadata's content before its rename
    before = len(synced)
    store.append("s", ev(EventKind.TRANSCRIPT, "Hallo.", 0))
    assert published == [synced[:before] + [log]]  # synced once, before it was published
    synced.clear()
    store.close("s")
    assert synced[-1] == str(tmp_path) and meta not in synced  # replaced durably: tmp, rename, dir
    synced.clear()
    quick = SessionStore(tmp_path / "quick", fsync=False)
    quick.open("s", "de", "en")
    quick.append("s", ev(EventKind.TRANSCRIPT, "Hallo.", 0))
    assert synced == []


def test_metadata_is_rebuilt_from_the_log(tmp_path):
    store = SessionStore(tmp_path, exclusive=True)
    store.open("Weekly / Team", "de", "en")
    store.append("Weekly / Team", ev(EventKind.TRANSCRIPT, "Hallo.", 0, language="de"))
    store.append("Weekly / Team", ev(EventKind.TRANSLATION, "Hello.", 0, language="en"))
    store.append("Weekly / Team", ev(EventKind.END, end=5.0))
    store.close("Weekly / Team")
    started = store.info("Weekly / Team").started_at
    meta = next(tmp_path.glob("*.meta.json"))
    for damage in (lambda: meta.write_text('{"name": "Weekly / Te'), meta.unlink):
        damage()
        reader = SessionStore(tmp_path)
        info = reader.info("Weekly / Team")
        assert (info.name, info.source_language, info.target_language, info.started_at, info.state) == (
            "Weekly / Team",
            "de",
            "en",
            started,
            "ended",
        )
        assert info.counts == {"transcript": 1, "translation": 1, "end": 1} and info.ended_at >= started
        assert [i.name for i in reader.sessions()] == ["Weekly / Team"]
        assert not meta.exists() or "Weekly / Te" in meta.read_text()  # a reader leaves the files alone
    assert store.sessions()[0].state == "ended"
    assert json.loads(meta.read_text())["state"] == "ended"  # the directory's owner writes it back


def test_a_log_without_header_or_end_is_a_live_session_with_languages_from_its_events(tmp_path):
    lines = [
        ev(EventKind.TRANSCRIPT, "Hallo.", 0, 0.0, 2.0, language="de"),
        ev(EventKind.TRANSLATION, "Hello.", 0, 0.0, 2.0, language="en"),
    ]
    (tmp_path / "old-session.jsonl").write_text("".join(e.to_json() + "\n" for e in lines))
    info = SessionStore(tmp_path).sessions()[0]
    assert (info.name, info.source_language, info.target_language, info.state) == ("old-session", "de", "en", "live")
    owner = SessionStore(tmp_path, exclusive=True)
    with pytest.raises(StoreError, match="in use"):
        SessionStore(tmp_path).recover()  # only the directory's owner marks sessions ended
    assert owner.recover() == ["old-session"] and owner.info("old-session").state == "ended"


def test_one_server_per_data_directory(tmp_path):
    first = SessionStore(tmp_path, exclusive=True)
    with pytest.raises(
        StoreError,
        match=rf"data directory {tmp_path} is in use by another livetranslate "
        rf"server \(pid {os.getpid()}\)",
    ):
        SessionStore(tmp_path, exclusive=True)
    SessionStore(tmp_path).sessions()  # readers need no lock
    first.shutdown()
    SessionStore(tmp_path, exclusive=True).shutdown()


def test_the_lock_is_held_by_another_process_until_it_dies(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from livetranslate.store import SessionStore
            store = SessionStore({str(tmp_path)!r}, exclusive=True)
            print("locked", flush=True)
            time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(StoreError, match=rf"in use by another livetranslate server \(pid {holder.pid}\)"):
            SessionStore(tmp_path, exclusive=True)
    finally:
        holder.send_signal(signal.SIGKILL)  # no cleanup: the kernel lets the lock go
        holder.wait()
    SessionStore(tmp_path, exclusive=True).shutdown()


def test_a_full_disk_fails_one_session_not_the_store(tmp_path):
    store = SessionStore(tmp_path, hub=Hub())
    (tmp_path / "full.jsonl").symlink_to("/dev/full")  # the kernel answers every write with ENOSPC
    with pytest.raises(StoreError, match=r"disk full while starting session 'full': No space left on device"):
        store.open("full", "de", "en")
    with pytest.raises(StoreError, match=r"disk full while storing session 'full': No space left on device"):
        store.append("full", ev(EventKind.TRANSCRIPT, "verloren", 0))
    store.open("ok", "de", "en")
    store.append("ok", ev(EventKind.TRANSCRIPT, "gespeichert", 0))
    with pytest.raises(StoreError):
        store.append("full", ev(EventKind.TRANSCRIPT, "wieder verloren", 1))
    store.append("ok", ev(EventKind.END))
    store.close("ok")
    assert store.events("full") == [] and store.info("full") is None  # read at once, not /dev/full's endless zeros
    assert [e.text for e in store.events("ok")] == ["gespeichert", ""]
    assert [i.name for i in store.sessions()] == ["ok"]


def test_a_write_cut_off_by_the_file_size_limit_leaves_no_half_event(tmp_path):
    """A real short write: RLIMIT_FSIZE lets the kernel write part of the line, then refuse."""
    script = textwrap.dedent(f"""
        import os, resource, signal
        from livetranslate.protocol import Event, EventKind
        from livetranslate.store import SessionStore, StoreError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        store = SessionStore({str(tmp_path)!r})
        store.open("s", "de", "en")
        store.append("s", Event(EventKind.TRANSCRIPT, "kurz", 0))
        log = next(p for p in os.listdir({str(tmp_path)!r}) if p.endswith(".jsonl"))
        size = os.path.getsize(os.path.join({str(tmp_path)!r}, log))
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 400, size + 400))
        try:
            store.append("s", Event(EventKind.TRANSCRIPT, "lang " * 200, 1))
        except StoreError as exc:
            print(exc)
        print(os.path.getsize(os.path.join({str(tmp_path)!r}, log)) - size)
        store.append("s", Event(EventKind.TRANSCRIPT, "passt", 2))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    message, grown = out.stdout.splitlines()
    assert message == "file size limit reached while storing session 's': File too large"
    assert grown == "0"  # the part that was written is cut off again
    assert [e.text for e in SessionStore(tmp_path).events("s")] == ["kurz", "passt"]


def test_distinct_names_never_share_files_and_old_files_are_still_found(tmp_path):
    assert safe_name("a/b") != safe_name(safe_name("a/b")) != safe_name("a_b")
    old = _legacy_name("Weekly / Team")  # how stores before the hashed names named the files
    (tmp_path / f"{old}.jsonl").write_text(ev(EventKind.TRANSCRIPT, "alt", 0).to_json() + "\n")
    (tmp_path / f"{old}.meta.json").write_text(json.dumps({"name": "Weekly / Team", "state": "ended"}))
    store = SessionStore(tmp_path)
    assert store.info("Weekly / Team").state == "ended" and store.events("Weekly / Team")[0].text == "alt"


def ended_session(store, name, days_ago, text_bytes=1000):
    store.open(name, "de", "en")
    store.append(name, ev(EventKind.TRANSCRIPT, "x" * text_bytes, 0))
    store.append(name, ev(EventKind.END))
    store.close(name)
    meta = store._paths(name)[1]
    info = json.loads(meta.read_text())
    info["started_at"] = info["ended_at"] = time.time() - days_ago * 86400
    meta.write_text(json.dumps(info))


def test_prune_removes_old_and_then_oldest_ended_sessions_never_live_ones(tmp_path):
    store = SessionStore(tmp_path, exclusive=True)
    for name, days in (("old", 40), ("older", 50), ("week", 7), ("today", 0)):
        ended_session(store, name, days)
    store.open("live", "de", "en")  # started long ago, still streaming
    store.append("live", ev(EventKind.TRANSCRIPT, "x" * 1000, 0))
    assert store.prune() == []
    assert [i.name for i in store.prune(30 * 86400, dry_run=True)] == ["older", "old"]
    assert len(list(tmp_path.glob("*.jsonl"))) == 5  # a dry run removes nothing
    assert [i.name for i in store.prune(30 * 86400)] == ["older", "old"]
    assert sorted(i.name for i in store.sessions()) == ["live", "today", "week"]
    sizes = {i.name: i.size_bytes for i in store.sessions()}
    assert all(size > 1000 for size in sizes.values())
    removed = store.prune(max_total_bytes=_dir_bytes(tmp_path) - 1)
    assert [i.name for i in removed] == ["week"] and removed[0].size_bytes == sizes["week"]
    assert [i.name for i in store.prune(max_total_bytes=0)] == ["today"]  # never "live"
    assert [i.name for i in store.sessions()] == ["live"] and store.events("live")
    with pytest.raises(ValueError):
        store.prune(max_age_s=float("nan"))


def test_prune_needs_the_directory_to_itself(tmp_path):
    server = SessionStore(tmp_path, exclusive=True)
    ended_session(server, "old", 40)
    reader = SessionStore(tmp_path)
    assert [i.name for i in reader.prune(86400, dry_run=True)] == ["old"]
    with pytest.raises(StoreError, match="in use by another livetranslate server"):
        reader.prune(86400)
    server.shutdown()
    assert [i.name for i in reader.prune(86400)] == ["old"] and reader.sessions() == []


def test_durations_and_sizes():
    assert [store_module.parse_duration(t) for t in ("30d", "12h", "90m", "45s", "1.5 W")] == [
        30 * 86400,
        12 * 3600,
        90 * 60,
        45,
        1.5 * 7 * 86400,
    ]
    assert [store_module.parse_size(t) for t in ("500MB", "2gb", "1.5GiB", "4096", "10k")] == [
        500 * 10**6,
        2 * 10**9,
        int(1.5 * 2**30),
        4096,
        10_000,
    ]
    for bad in ("30", "30x", "-1d", "d", "1e3h", ""):
        with pytest.raises(ValueError, match="is not a duration"):
            store_module.parse_duration(bad)
    for bad in ("2 GB of disk", "-5MB", "MB", "1e9"):
        with pytest.raises(ValueError, match="is not a size"):
            store_module.parse_size(bad)


def test_prune_command(tmp_path):
    from livetranslate.cli import main

    store = SessionStore(tmp_path)
    ended_session(store, "old", 40)
    ended_session(store, "new", 1)
    run = CliRunner().invoke
    listed = run(main, ["prune", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[:2] for line in listed.output.splitlines()[:2]] == [["new", "ended"], ["old", "ended"]]
    assert "2 sessions" in listed.output.splitlines()[-1]
    dry = run(main, ["prune", "--data-dir", str(tmp_path), "--older-than", "30d", "--dry-run"])
    assert dry.exit_code == 0 and dry.output.splitlines()[0].split()[:2] == ["old", "ended"]
    assert "40.0d" in dry.output and dry.output.splitlines()[-1].startswith("would remove 1 session")
    done = run(main, ["prune", "--data-dir", str(tmp_path), "--max-size", "1B"])
    assert done.exit_code == 0 and done.output.splitlines()[-1].startswith("removed 2 sessions")
    assert list(tmp_path.glob("*.jsonl")) == []
    bad = run(main, ["prune", "--data-dir", str(tmp_path), "--older-than", "30 days"])
    assert bad.exit_code == 2 and "'30 days' is not a duration" in bad.output
    bad = run(main, ["prune", "--data-dir", str(tmp_path), "--max-size", "lots"])
    assert bad.exit_code == 2 and "'lots' is not a size" in bad.output
    missing = run(main, ["prune", "--data-dir", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such data directory" in missing.output
