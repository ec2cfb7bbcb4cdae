"""The Redis session store against a real redis-server: what the local store guarantees,
and what several servers sharing it need (one owner per session through its lease, viewers
on any server, a dead server's sessions ended, a drained one's handed over, Redis restarts)."""

import threading
import time
import uuid

import pytest
from redisd import RedisServer

from livetranslate.protocol import Event, EventKind
from livetranslate.store import Hub, SessionBusy, StoreError, Viewer, open_store, session_report
from livetranslate.store.redis_store import NOT_CONTINUED, RedisSessionStore


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


def replica(url, **kw):
    """One server's store: its own hub, leases and reaper, in its own key space per test."""
    kw.setdefault("lease_s", 1.0)
    return RedisSessionStore(url, Hub(), serving=True, **kw)


@pytest.fixture
def url(redis_url):
    return f"{redis_url}?prefix=t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def two(url):
    a, b = replica(url), replica(url)
    yield a, b
    a.shutdown()
    b.shutdown()


def transcript(i, text="Hallo", end_s=None):
    return Event(EventKind.TRANSCRIPT, text, segment_id=i, start_s=float(i), end_s=end_s or i + 0.9, language="de")


def translation(i, text="Hello", language="en"):
    return Event(EventKind.TRANSLATION, text, segment_id=i, start_s=float(i), end_s=i + 0.9, language=language)


def take_all(viewer, until_kind=EventKind.END, timeout_s=10.0):
    got, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        event = viewer.take(0.2)
        if event is not None:
            got.append(event)
            if event.kind == until_kind:
                break
    return got


def test_a_session_is_stored_listed_and_read_like_in_the_local_store(two):
    a, _ = two
    a.open("Weekly sync ü", "de", "en", [{"term": "Kubernetes", "translation": "Kubernetes"}])
    a.append("Weekly sync ü", transcript(0))
    a.append("Weekly sync ü", translation(0))
    a.append("Weekly sync ü", translation(0, "Bonjour", "fr"))
    a.append("Weekly sync ü", Event(EventKind.END, end_s=0.9))
    assert a.close("Weekly sync ü")
    info = a.info("Weekly sync ü")
    assert (info.state, info.source_language, info.target_language) == ("ended", "de", "en")
    assert info.counts == {"transcript": 1, "translation": 2, "end": 1}
    assert info.languages == ["en", "fr"] and info.glossary[0]["term"] == "Kubernetes"
    assert info.ended_at >= info.started_at > 0
    assert [e.kind for e in a.events("Weekly sync ü")] == ["transcript", "translation", "translation", "end"]
    assert a.resume_point("Weekly sync ü") == (1, 0.9)
    assert [i.name for i in a.sessions()] == ["Weekly sync ü"]
    assert a.info("nothing") is None and a.events("nothing") == []
    report = session_report(a, "get", "Weekly sync ü")
    assert '"Hello"' in report and '"Bonjour"' in report


def test_one_server_at_a_time_serves_a_session(two):
    a, b = two
    a.open("s", "de", "en")
    with pytest.raises(SessionBusy, match="live on another server"):
        b.open("s", "de", "en")
    assert a.open("s", "de", "en")  # a second stream of it on the same server (a reconnect) is fine
    assert a.live_streams("s") == 2
    assert not a.close("s") and a.close("s")
    b.open("s", "de", "en")  # free once it ended
    b.close("s")


def test_a_viewer_on_another_server_gets_every_event_in_order_once(two):
    a, b = two
    a.open("s", "de", "en")
    for i in range(3):
        a.append("s", transcript(i))
    viewer = Viewer()
    history = b.attach("s", viewer)
    assert [e.segment_id for e in history] == [0, 1, 2]
    writer = threading.Thread(target=lambda: [a.append("s", transcript(i)) for i in range(3, 40)])
    writer.start()
    writer.join()
    a.append("s", Event(EventKind.END, end_s=40.0))
    a.close("s")
    live = take_all(viewer)
    b.detach("s", viewer)
    assert [e.segment_id for e in live if e.kind == EventKind.TRANSCRIPT] == list(range(3, 40))
    assert live[-1].kind == EventKind.END
    assert b.ended_with("s").kind == EventKind.END


def test_history_and_live_events_meet_without_a_gap_or_a_duplicate(two):
    """Viewers attach while the speaker writes as fast as it can."""
    a, b = two
    a.open("s", "de", "en")
    stop = threading.Event()
    written = []

    def write():
        i = 0
        while not stop.is_set():
            a.append("s", transcript(i))
            written.append(i)
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    viewers = []
    for _ in range(5):
        time.sleep(0.05)
        viewer = Viewer(max_events=100_000)
        viewers.append((viewer, b.attach("s", viewer)))
    time.sleep(0.2)
    stop.set()
    writer.join()
    a.append("s", Event(EventKind.END))
    for viewer, history in viewers:
        seen = [e.segment_id for e in history + take_all(viewer) if e.kind == EventKind.TRANSCRIPT]
        assert seen == written
        b.detach("s", viewer)


def test_a_dead_servers_session_is_ended_with_the_reason_and_can_go_on_elsewhere(url):
    a, b = replica(url, lease_s=0.6), replica(url, lease_s=0.6)
    try:
        a.open("s", "de", "en")
        a.append("s", transcript(0, end_s=3.5))
        viewer = Viewer()
        b.attach("s", viewer)
        a._stop.set()  # the server dies: nothing renews its lease any more
        began = time.monotonic()
        [end] = take_all(viewer, timeout_s=5)
        assert end.kind == EventKind.END and "stopped" in end.error and end.end_s == 3.5
        assert time.monotonic() - began < 0.6 + 1.0  # the lease, and one reaper round
        assert b.info("s").state == "ended"
        with pytest.raises(StoreError, match="lost its lease"):
            a.append("s", transcript(1))  # the dead server, back from a pause, cannot write into it
        b.open("s", "de", "en")  # its speaker reconnects to b
        assert b.resume_point("s") == (1, 3.5)
        b.append("s", transcript(1))
        assert b.info("s").state == "live"
        b.detach("s", viewer)
    finally:
        a.shutdown()
        b.shutdown()


def test_a_drained_session_is_taken_over_at_once_or_ended_when_nobody_continues(url):
    a, b = replica(url, handover_s=0.8), replica(url, handover_s=0.8)
    try:
        a.open("moved", "de", "en")
        a.append("moved", transcript(0))
        a.handover("moved", "the server is shutting down")
        assert a.close("moved")
        assert b.info("moved").state == "live"  # handed over, not ended
        b.open("moved", "de", "en")  # its client went on on b: no wait for the lease
        b.append("moved", transcript(1))
        with pytest.raises(StoreError):
            a.append("moved", transcript(2))
        b.close("moved")
        assert [e.kind for e in b.events("moved")] == ["transcript", "transcript"]  # no `end` between

        a.open("left", "de", "en")
        a.handover("left", "the server is shutting down")
        a.close("left")
        time.sleep(0.8 + 1.0)
        end = b.ended_with("left")
        assert end is not None and end.error.startswith(NOT_CONTINUED) and "shutting down" in end.error
    finally:
        a.shutdown()
        b.shutdown()


def test_an_append_retried_after_a_lost_answer_is_stored_once(two):
    a, _ = two
    a.open("s", "de", "en")
    keys = [a._k("events", "s"), a._k("meta", "s"), a._k("lease", "s")]
    args = [a.token, "same-append-id", transcript(0).to_json(), "transcript", "1", "0.9", 1000, ""]
    first, again = a._append(keys=keys, args=args), a._append(keys=keys, args=args)
    assert first == again and len(a.events("s")) == 1 and a.info("s").counts == {"transcript": 1}


def test_nothing_acknowledged_is_lost_when_redis_restarts(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    store = replica(server.url, lease_s=10.0)
    try:
        store.open("s", "de", "en")
        acknowledged = []
        failures = []

        def speak():
            for i in range(300):
                try:
                    store.append("s", transcript(i))
                    acknowledged.append(i)
                except StoreError as exc:
                    failures.append(str(exc))
                time.sleep(0.005)

        speaker = threading.Thread(target=speak)
        speaker.start()
        time.sleep(0.3)
        server.restart()  # mid-session; the store's retries bridge it
        speaker.join()
        assert not failures
        stored = [e.segment_id for e in store.events("s")]
        assert stored == acknowledged == list(range(300))
    finally:
        store.shutdown()
        server.stop()


def test_with_redis_gone_a_write_fails_clearly_within_the_stated_bound(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    store = RedisSessionStore(server.url, Hub(), serving=False, retry_s=2.0)
    try:
        server.kill()
        began = time.monotonic()
        with pytest.raises(StoreError, match="unreachable"):
            store.open("s", "de", "en")
        assert time.monotonic() - began < 2.0 + 3.0
    finally:
        store.shutdown()


@pytest.mark.slow  # several seconds of real Redis: in the full suite
def test_the_store_is_chosen_by_one_option(tmp_path, monkeypatch, redis_url):
    monkeypatch.setenv("LIVETRANSLATE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LIVETRANSLATE_STORE", raising=False)
    assert type(open_store()).__name__ == "SessionStore"
    monkeypatch.setenv("LIVETRANSLATE_STORE", redis_url)
    store = open_store()
    assert isinstance(store, RedisSessionStore)
    store.shutdown()
    with pytest.raises(ValueError, match="redis://host:6379/0"):
        open_store("postgres://x")
    with pytest.raises(StoreError, match="cannot reach the session store"):
        open_store("redis://127.0.0.1:1/0")


def test_viewer_languages_count_on_every_server(url):
    from livetranslate.pipeline.guards import ServerFull
    from livetranslate.pipeline.sessions import ViewerLanguages

    a, b = replica(url, lease_s=0.5), replica(url, lease_s=0.5)
    try:
        on_a, on_b = ViewerLanguages(2, shared=a), ViewerLanguages(2, shared=b)
        on_b.join("s", "fr", "en")
        on_b.join("s", "fr", "en")
        assert on_a.of("s") == {"fr"}  # the speaker's server (a) translates for b's viewers
        on_a.join("s", "es", "en")
        with pytest.raises(ServerFull, match="2 language"):
            on_b.join("s", "it", "en")  # the limit counts every server's languages
        on_b.join("s", "en", "en")  # the speaker's own language always
        on_b.leave("s", "fr")
        assert on_a.of("s") == {"fr", "es", "en"}
        on_b.leave("s", "fr")
        on_b.leave("s", "en")
        assert on_a.of("s") == {"es"}
        on_b.join("s", "de", "en")
        b._stop.set()  # b dies: nothing renews its viewers' languages
        time.sleep(0.5 * 3 + 0.5)
        assert on_a.of("s") == {"es"}
    finally:
        a.shutdown()
        b.shutdown()


def test_prune_lists_and_removes_ended_sessions_in_redis_never_live_ones(two, url):
    from click.testing import CliRunner

    from livetranslate.cli import main

    a, _ = two
    for name in ("old", "live"):
        a.open(name, "de", "en")
        a.append(name, transcript(0))
    a.close("old")
    listed = CliRunner().invoke(main, ["prune", "--store", url])
    assert listed.exit_code == 0 and "old" in listed.output and "2 sessions" in listed.output, listed.output
    removed = CliRunner().invoke(main, ["prune", "--store", url, "--older-than", "0s"])
    assert removed.exit_code == 0 and "removed 1 session" in removed.output, removed.output
    assert [i.name for i in a.sessions()] == ["live"] and a.events("old") == []
    refused = CliRunner().invoke(main, ["prune", "--store", url, "--max-size", "1GB"])
    assert refused.exit_code != 0 and "maxmemory" in refused.output


@pytest.mark.slow  # several seconds of real Redis: in the full suite
def test_a_clients_quota_holds_across_servers_and_a_dead_servers_share_runs_out(two, url):
    """Named client keys (livetranslate.keys) with several servers on one Redis: each client's
    streams are counted over all of them; what a server that died held is free again after
    its leases ran out (3 of them)."""
    a, b = two
    qa, qb = a.client_quota(), b.client_quota()
    assert qa.take("stream", "alice", 2) and qb.take("stream", "alice", 2)
    assert not qa.take("stream", "alice", 2) and not qb.take("stream", "alice", 2)  # 2 in all, on two servers
    assert qb.take("stream", "bob", 2) and qa.count("stream", "alice") == 2
    assert qa.take("viewer", "alice", 1) and not qb.take("viewer", "alice", 1)  # viewers apart from streams
    qa.give_back("stream", "alice")
    assert qb.take("stream", "alice", 2)  # the place a's stream left
    qa.give_back("stream", "alice")  # a holds none: nothing to give back, nothing changes
    assert qb.count("stream", "alice") == 2
    time.sleep(2.5)  # renewed meanwhile: still held
    assert qa.count("stream", "alice") == 2
    # b dies without giving anything back: its share runs out once its leases would have
    b._stop.set()
    deadline = time.monotonic() + 10
    while qa.count("stream", "alice") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert qa.count("stream", "alice") == 0 and qa.take("stream", "alice", 2)


def test_a_speakers_name_is_kept_in_redis_and_reaches_viewers_on_every_server(two):
    from livetranslate.present.speakers import SpeakerBook

    a, b = two
    a.open("named", "de", "en")
    a.append("named", Event(EventKind.TRANSCRIPT, "Hallo.", 0, 0.0, 1.0, "de", speaker="S1"))
    a.append("named", Event(EventKind.TRANSCRIPT, "Ja.", 1, 1.5, 2.0, "de", speaker="S2"))
    a.append("named", Event(EventKind.SPEAKER_UPDATE, segment_id=1, end_s=2.0, speaker="S1"))
    viewer = Viewer()
    b.attach("named", viewer)
    b.annotate("named", Event(EventKind.SPEAKER_NAME, "Anna <b>", 1, speaker="S1"))  # from another server, live
    a.append("named", Event(EventKind.END, end_s=3.0))
    a.close("named")
    live = take_all(viewer)
    b.detach("named", viewer)
    assert [(e.kind, e.speaker, e.text) for e in live][:1] == [(EventKind.SPEAKER_NAME, "S1", "Anna <b>")]
    a.annotate("named", Event(EventKind.SPEAKER_NAME, "Anna", 1, speaker="S1"))  # ended: still kept
    book = SpeakerBook.of(b.events("named"))
    assert (book.who(0), book.who(1)) == ("Anna", "Anna")
