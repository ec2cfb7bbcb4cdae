"""Several server addresses (replicas that share sessions): a client connects to the first that
answers; a speaker whose server is lost (killed, drained) goes on at the next address with the
same session, segment numbers and clock; a server that refuses the stream for now is left for
the next, without losing the audio it was offered; a viewer follows on without repeating what
it has shown. Fast: each address is a scripted replica behind tritonclient's gRPC client class,
driven through the real PipelineClient, ResilientSession and follow(); an address that is down
is a real closed port, so what users read about it is the real diagnosis."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from click.testing import CliRunner
from conftest import free_port
from tritonclient.utils import deserialize_bytes_tensor

from livetranslate import cli
from livetranslate import protocol as P
from livetranslate.cli import outputs as cli_outputs
from livetranslate.client import (
    AudioBuffer,
    ClientError,
    Connection,
    PipelineClient,
    ResilientSession,
    follow,
    normalize_urls,
)
from livetranslate.client.connection import ADDRESS_TIMEOUT_S, Unreachable
from livetranslate.client.resilient import Refused
from livetranslate.protocol import Event, SessionOptions
from livetranslate.protocol import EventKind as K

RATE = 16000
CHUNK = RATE // 10
LEASED = "session 'standup' is live on another server: try again when its lease runs out"
DRAINING = "the server is shutting down: this stream has ended; reconnect in a moment"


class Result:
    """One response, as tritonclient hands it to a stream callback."""

    def __init__(self, request_id: str, event: Event | None = None, final: bool = False):
        self._tensors = event.to_tensors() if event is not None else {}
        self._response = type(
            "Response",
            (),
            {
                "id": request_id,
                "outputs": list(self._tensors),
                "parameters": {"triton_final_response": type("Flag", (), {"bool_param": final})()},
            },
        )()

    def get_response(self):
        return self._response

    def as_numpy(self, name):
        return self._tensors.get(name)


class Replica:
    """One address. A speaker stream turns each audio chunk into one transcript whose text is
    the chunk's sample value (the test audio numbers its chunks 1, 2, ...) and whose id and
    times come from the stream's SEGMENT_BASE and TIME_BASE_S; the last request gets `end`.
    Scripted trouble: refuse the next streams (as `end` or as `error`), die (kill -9: the
    stream fails, the port closes) or drain (the stream is ended with Triton's words, then
    the port closes) after some transcripts. A viewer gets `history`, then `end` or a death."""

    def __init__(self, url: str):
        self.url, self.up = url, True
        self.refusals: list[str] = []
        self.refuse_as = K.END
        self.die_after: int | None = None
        self.drain_after: int | None = None
        # what a drained stream is told, and whether the server goes away then
        self.drain_message, self.drain_leaves = DRAINING, True
        self.warning = ""  # an `error` event in answer to a stream's first request, which goes on
        self.history: list[Event] = []
        self.viewer_dies = False
        self.streams: list[dict] = []  # each: options, values it heard, refused (its message)
        self.transcribed = 0
        self._lock = threading.Lock()

    def request(self, conn: FakeTriton, tensors: dict, request_id: str, start: bool, end: bool) -> None:
        with self._lock:
            if not self.up or conn.stopped:
                raise RuntimeError("[StatusCode.UNAVAILABLE] Socket closed")
            send = conn.callback
            if P.SUBSCRIBE in tensors:
                for event in self.history:
                    send(Result(request_id, event), None)
                if self.viewer_dies:
                    self.up = False
                    send(None, RuntimeError("[StatusCode.UNAVAILABLE] Socket closed"))
                else:  # a viewer's request asks for no empty final response
                    send(Result(request_id, Event(K.END)), None)
                return
            if start:
                conn.stream = {"options": SessionOptions.from_tensors(tensors.get, "?"), "heard": [], "refused": ""}
                self.streams.append(conn.stream)
                if self.refusals:
                    message = conn.stream["refused"] = self.refusals.pop(0)
                    refusal = Event(K.END, error=message) if self.refuse_as == K.END else Event(K.ERROR, message)
                    conn.stream["heard"].append(int(tensors[P.AUDIO][0]))

                    def refuse():  # a moment later, as over a network: what else arrives meanwhile is heard
                        send(Result(request_id, refusal), None)
                        send(Result(request_id, final=True), None)

                    threading.Timer(0.05, refuse).start()
                    return
                if self.warning:
                    send(Result(request_id, Event(K.ERROR, self.warning)), None)
            stream = conn.stream
            if stream["refused"]:
                if tensors[P.AUDIO].size:
                    stream["heard"].append(int(tensors[P.AUDIO][0]))
                send(Result(request_id, Event(K.ERROR, "no open stream for this sequence")), None)
                send(Result(request_id, final=True), None)
                return
            audio = tensors[P.AUDIO]
            if audio.size:
                if self.die_after is not None and self.transcribed == self.die_after:
                    self.up = False  # kill -9: no answer, the connection breaks
                    send(None, RuntimeError("[StatusCode.UNAVAILABLE] Socket closed"))
                    return
                if self.drain_after is not None and self.transcribed == self.drain_after:
                    self.up = not self.drain_leaves
                    if self.up:  # the stream is closed, the server goes on
                        self.drain_after, stream["refused"] = None, self.drain_message
                    send(Result(request_id, Event(K.ERROR, self.drain_message)), None)
                    send(Result(request_id, final=True), None)
                    return
                options, before = stream["options"], len(stream["heard"])
                stream["heard"].append(int(audio[0]))
                start_s = options.time_base_s + before * CHUNK / RATE
                send(
                    Result(
                        request_id,
                        Event(
                            K.TRANSCRIPT,
                            str(int(audio[0])),
                            options.segment_base + before,
                            start_s,
                            start_s + CHUNK / RATE,
                        ),
                    ),
                    None,
                )
                self.transcribed += 1
            if end:
                send(Result(request_id, Event(K.END)), None)
            send(Result(request_id, final=True), None)


class FakeTriton:
    """tritonclient.grpc.InferenceServerClient for the replica at `url`."""

    replicas: dict[str, Replica] = {}
    tried: list[tuple[str, float]] = []  # every health check: (address, its timeout)

    def __init__(self, url, **_):
        self.replica, self.callback, self.stream, self.stopped = self.replicas[url], None, None, False

    def is_server_live(self, client_timeout=None, **_):
        self.tried.append((self.replica.url, client_timeout))
        if not self.replica.up:
            raise RuntimeError("[StatusCode.UNAVAILABLE] failed to connect to all addresses")
        return True

    def is_model_ready(self, *_, **__):
        return True

    def start_stream(self, callback, headers=None):
        self.callback = callback

    def async_stream_infer(
        self, model_name, inputs, request_id="", sequence_id=0, sequence_start=False, sequence_end=False, **_
    ):
        tensors = {}
        for tensor in inputs:
            raw = tensor._raw_content or b""
            tensors[tensor.name()] = (
                deserialize_bytes_tensor(raw)
                if tensor.datatype() == "BYTES"
                else np.frombuffer(raw, grpcclient.triton_to_np_dtype(tensor.datatype()))
            )
        self.replica.request(self, tensors, request_id, sequence_start, sequence_end)

    def stop_stream(self, cancel_requests=False):
        self.stopped = True

    def close(self):
        pass


@pytest.fixture
def replicas(monkeypatch):
    """replicas(n): n scripted servers on closed ports of this machine."""
    monkeypatch.setattr(grpcclient, "InferenceServerClient", FakeTriton)
    monkeypatch.setattr(FakeTriton, "replicas", {})
    monkeypatch.setattr(FakeTriton, "tried", [])

    def make(n: int) -> list[Replica]:
        made = [Replica(f"127.0.0.1:{free_port()}") for _ in range(n)]
        FakeTriton.replicas.update({replica.url: replica for replica in made})
        return made

    return make


def tried() -> list[str]:
    return [url for url, _ in FakeTriton.tried]


class NumberedAudio:
    """A file-like source: chunk i (from 1) is 100 ms of the sample value i."""

    rate, live = RATE, False

    def __init__(self, chunks: int):
        self.chunks = chunks

    def __iter__(self):
        for value in range(1, self.chunks + 1):
            yield np.full(CHUNK, value, np.int16)


def speak(connection: Connection, chunks: int = 20, **options):
    """Runs a ResilientSession over numbered audio; its events, status lines and the session."""
    events, statuses, failure = [], [], []
    session = ResilientSession(
        connection,
        SessionOptions("standup", RATE),
        on_event=events.append,
        on_status=statuses.append,
        max_backoff_s=0.01,
        **options,
    )

    def run():
        try:
            session.run(NumberedAudio(chunks))
        except Exception as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), statuses
    if failure:
        raise failure[0]
    return events, statuses, session


def heard(events) -> list[int]:
    """The chunk numbers the transcripts speak of, checked for one session going on: ids
    numbered on without a gap, each transcript at its chunk's place on the session clock."""
    transcripts = [e for e in events if e.kind == K.TRANSCRIPT]
    assert [e.segment_id for e in transcripts] == list(range(len(transcripts)))
    for event in transcripts:
        assert event.start_s == pytest.approx((int(event.text) - 1) * CHUNK / RATE, abs=1e-3), event
    return [int(e.text) for e in transcripts]


# --- addresses ---------------------------------------------------------------------------
def test_a_list_of_addresses_is_normalized_entry_by_entry():
    connection = Connection(" grpc://a.example:9001/, b.example ,a.example:9001, [::1]:8001,")
    assert connection.urls == ("a.example:9001", "b.example:8001", "[::1]:8001")  # in order, once each
    assert connection.url == "a.example:9001,b.example:8001,[::1]:8001" and not connection.tls
    assert Connection("grpcs://a:8001,b:8001").tls  # TLS holds for all of them
    assert Connection("a:8001,b:8001", tls=True).urls == ("a:8001", "b:8001")
    assert Connection("localhost").urls == ("localhost:8001",)


@pytest.mark.parametrize(
    "text, says",
    [
        ("a:8001,b:http", "--url 'b:http': the port must be a number from 1 to 65535"),
        ("a:8001,ftp://b:8001", "--url 'ftp://b:8001': unknown scheme ftp://"),
        ("a:8001,:9000", "--url ':9000': no host"),
        (" , ", "--url ' , ': no host"),
        (
            "grpcs://a:8001,http://b:8001",
            "--url 'grpcs://a:8001,http://b:8001': grpcs://a:8001 uses TLS and http://b:8001 does not",
        ),
    ],
)
def test_a_bad_entry_is_named_with_the_single_address_message(text, says):
    with pytest.raises(ClientError) as caught:
        normalize_urls(text)
    assert str(caught.value).startswith(says)


def test_cli_names_the_bad_entry_of_a_list():
    result = CliRunner().invoke(cli.main, ["sessions", "--url", "localhost:8001,ftp://localhost:8001"])
    assert result.exit_code == 1 and result.output.startswith("Error: --url 'ftp://localhost:8001': unknown scheme")


def test_after_goes_round_the_list():
    connection = Connection("a:1,b:2,c:3")
    assert connection.after(None) == ("a:1", "b:2", "c:3")
    assert connection.after("a:1") == ("b:2", "c:3", "a:1")
    assert connection.after("c:3") == ("a:1", "b:2", "c:3")
    assert connection.after("elsewhere:4") == ("a:1", "b:2", "c:3")


def test_the_first_address_that_answers_is_used_each_with_a_short_timeout(replicas):
    down, up, spare = replicas(3)
    down.up = False
    client = PipelineClient(Connection(f"{down.url},{up.url},{spare.url}"), timeout_s=10)
    assert client.url == up.url
    assert FakeTriton.tried == [(down.url, ADDRESS_TIMEOUT_S), (up.url, ADDRESS_TIMEOUT_S)]  # spare: not asked
    FakeTriton.tried.clear()
    PipelineClient(up.url, timeout_s=10)
    assert FakeTriton.tried == [(up.url, 10)]  # one address: the whole timeout


def test_when_no_address_answers_each_says_why(replicas):
    a, b = replicas(2)
    a.up = b.up = False
    with pytest.raises(Unreachable) as caught:
        PipelineClient(f"{a.url},{b.url}")
    assert str(caught.value) == (
        f"none of the 2 servers answered:\n"
        f"  cannot reach the livetranslate server at {a.url}: nothing answers there. Is it running? "
        f"Start it with `livetranslate serve`, or check --url\n"
        f"  cannot reach the livetranslate server at {b.url}: nothing answers there. Is it running? "
        f"Start it with `livetranslate serve`, or check --url"
    )


# --- a speaker ---------------------------------------------------------------------------
def test_a_lost_server_is_followed_by_the_next_address_round_robin(replicas):
    a, b, c = replicas(3)
    a.die_after, b.die_after = 5, 5  # each dies for good
    events, statuses, session = speak(Connection(f"{a.url},{b.url},{c.url}"))
    # after losing a, the next try starts at b (not at a again); after b, at c
    assert tried() == [a.url, b.url, c.url]
    assert session.reconnects == 2 and session.address == c.url
    assert statuses[0] == f"connected to {a.url}, session standup"
    assert statuses[1].startswith("connection lost (") and "Socket closed" in statuses[1]
    assert statuses[2] == f"connected to {b.url}, session standup (moved from {a.url})"
    assert statuses[4] == f"connected to {c.url}, session standup (moved from {b.url})"
    numbers = heard(events)  # one session: ids and clock go on across the three servers
    assert numbers == sorted(set(numbers)) and numbers[-1] == 20 and events[-1].kind == K.END
    assert [s["options"].session for r in (a, b, c) for s in r.streams] == ["standup"] * 3
    # lost: only the audio in flight to a server as it died, and a chunk the client had taken
    deaths = [gone.streams[-1]["heard"][-1] for gone in (a, b)]
    assert all(any(0 < n - last <= 2 for last in deaths) for n in set(range(1, 21)) - set(numbers))


def test_after_a_loss_the_lost_address_is_tried_last_and_retries_wait(replicas):
    a, b = replicas(2)
    a.die_after = 5
    b.up = False
    done = threading.Event()

    def b_comes_back():  # while the client retries
        while not done.wait(0.02):
            if tried().count(b.url) >= 3:
                b.up = True
                return

    threading.Thread(target=b_comes_back, daemon=True).start()
    events, statuses, _ = speak(Connection(f"{a.url},{b.url}"))
    done.set()
    assert tried()[:5] == [a.url, b.url, a.url, b.url, a.url] and tried()[-1] == b.url
    waits = [s for s in statuses if s.startswith("cannot connect (none of the 2 servers answered")]
    assert len(waits) >= 2 and all(s.endswith(" s") and "; retrying in " in s for s in waits)
    assert heard(events)[-1] == 20 and events[-1].kind == K.END


@pytest.mark.parametrize("form", [K.END, K.ERROR])
def test_a_session_still_leased_elsewhere_is_retried_until_accepted_without_losing_audio(replicas, form):
    a, b = replicas(2)
    a.die_after = 5
    b.refusals, b.refuse_as = [LEASED, LEASED, LEASED], form
    events, statuses, _ = speak(Connection(f"{a.url},{b.url}"))
    refused = [s for s in statuses if " refused the stream: " in s]
    assert len(refused) == 3 and all(
        s.startswith(f"{b.url} refused the stream: {LEASED}; retrying in ") for s in refused
    )
    assert not [e for e in events if e.kind == K.ERROR or e.error]  # refusals are status, not events
    # each refused stream was offered the same first chunk, which went on to the stream accepted
    first_offered = [s["heard"] for s in b.streams if s["refused"]]
    assert len(first_offered) == 3 and len({offered[0] for offered in first_offered}) == 1
    if form == K.END:  # and nothing more: the client waits for the first answer before it sends on
        assert [len(offered) for offered in first_offered] == [1, 1, 1]
    accepted = [s for s in b.streams if not s["refused"]]
    assert len(accepted) == 1 and accepted[0]["heard"][0] == first_offered[0][0]
    numbers = heard(events)
    assert numbers == sorted(set(numbers)) and numbers[-1] == 20
    lost = set(range(1, 21)) - set(numbers)
    assert first_offered[0][0] not in lost and len(lost) <= 2  # only what was in flight to a when it died
    assert accepted[0]["options"].segment_base == 5  # the session's numbering goes on at b


def test_a_drained_server_hands_the_stream_to_the_next_at_once(replicas):
    a, b = replicas(2)
    a.drain_after = 5
    events, statuses, session = speak(Connection(f"{a.url},{b.url}"))
    assert statuses[1] == (f"connection lost ({DRAINING}); reconnecting, audio is buffered (up to 30 s)")
    assert statuses[2] == f"connected to {b.url}, session standup (moved from {a.url})"
    assert not any("retrying" in s for s in statuses)  # a stream that was going well: no wait
    assert not [e for e in events if e.kind == K.ERROR]
    assert heard(events)[-1] == 20 and session.reconnects == 1


def test_a_stream_closed_for_want_of_audio_reconnects_and_goes_on_with_its_session(replicas):
    """A capture that stalled for a minute: the server closed its stream; on the next
    request the client hears so, reconnects to the same server and the session goes on."""
    [a] = replicas(1)
    a.drain_after, a.drain_leaves = 5, False
    a.drain_message = "no audio for 60 s: the stream was closed; reconnect to go on"
    events, statuses, session = speak(Connection(a.url))
    assert statuses[1] == f"connection lost ({a.drain_message}); reconnecting, audio is buffered (up to 30 s)"
    assert not [e for e in events if e.kind == K.ERROR]
    assert session.reconnects == 1 and len(a.streams) == 2
    assert a.streams[1]["options"].session == a.streams[0]["options"].session
    # the session goes on after the old stream's transcripts (what was in flight when the stream
    # was found closed is lost: here, sent as fast as the fake answers, that is the rest)
    assert heard(events)[:5] == [1, 2, 3, 4, 5] and a.streams[1]["options"].segment_base == 5


def test_an_error_event_at_the_start_is_not_a_refusal(replicas):
    a, b = replicas(2)
    a.warning, a.die_after = "glossary: 2 terms too long, left out", 5
    events, statuses, _ = speak(Connection(f"{a.url},{b.url}"))
    assert [e.text for e in events if e.kind == K.ERROR] == [a.warning]  # shown, and the stream went on
    assert statuses[1].startswith("connection lost (")  # a loss after the stream was accepted ...
    numbers = heard(events)
    assert numbers == sorted(set(numbers)) and b.streams[0]["heard"][0] > 5  # ... so b hears nothing again


def test_the_first_connection_tries_each_address_once_then_gives_up(replicas):
    a, b = replicas(2)
    a.refusals = ["server full: 4 speaker streams are live, the most this server takes"]
    events, statuses, _ = speak(Connection(f"{a.url},{b.url}"))
    assert statuses[0] == f"connected to {a.url}, session standup"
    assert statuses[1].startswith(f"{a.url} refused the stream: server full")
    assert statuses[2] == f"connected to {b.url}, session standup (moved from {a.url})"
    assert heard(events) == list(range(1, 21))  # the refused chunk went to b

    c, d = replicas(2)
    c.refusals, d.refusals = ["the server is shutting down: try again in a moment"], ["the server is shutting down"]
    with pytest.raises(Refused, match=f"^{d.url} refused the stream: the server is shutting down"):
        speak(Connection(f"{c.url},{d.url}"))
    e, f = replicas(2)
    e.up = f.up = False
    FakeTriton.tried.clear()
    with pytest.raises(Unreachable, match="none of the 2 servers answered"):
        speak(Connection(f"{e.url},{f.url}"))
    assert tried() == [e.url, f.url]  # nothing running is the user's to fix: no retries


def test_a_single_address_that_refuses_at_first_says_so_at_once(replicas):
    (a,) = replicas(1)
    a.refusals = ["server full: 4 speaker streams are live, the most this server takes"]
    with pytest.raises(Refused, match="refused the stream: server full"):
        speak(Connection(a.url))
    assert len(a.streams) == 1


def test_reconnecting_gives_up_after_the_limit(replicas):
    a, b = replicas(2)
    a.die_after = 3
    b.up = False
    with pytest.raises(Unreachable, match="none of the 2 servers answered"):
        speak(Connection(f"{a.url},{b.url}"), give_up_after_s=0.3)
    assert len(tried()) > 3  # it did retry before giving up


def test_without_reconnect_a_loss_ends_the_session(replicas):
    a, b = replicas(2)
    a.die_after = 3
    with pytest.raises(ClientError, match="Socket closed"):
        speak(Connection(f"{a.url},{b.url}"), reconnect=False)
    assert not b.streams


def test_audio_given_back_goes_first_and_a_live_buffer_still_bounds_it():
    buffer = AudioBuffer(rate=10, live=True, max_s=1.5)
    for value in (3, 4):
        buffer.put(np.full(4, value, np.int16))
    buffer.unget([np.full(2, 1, np.int16), np.full(2, 2, np.int16)])
    assert [int(buffer.get(0.1)[0]) for _ in range(4)] == [1, 2, 3, 4]
    buffer.put(np.full(12, 5, np.int16))
    buffer.unget([np.full(4, 6, np.int16)])  # over the bound: the oldest goes, and is counted
    assert buffer.dropped_s == pytest.approx(0.4) and int(buffer.get(0.1)[0]) == 5


# --- a viewer ----------------------------------------------------------------------------
def transcript(i: int) -> Event:
    return Event(K.TRANSCRIPT, f"Satz {i}", i, i, i + 1, "de")


def translation(i: int) -> Event:
    return Event(K.TRANSLATION, f"sentence {i}", i, i, i + 1, "en")


def watched(connection: Connection) -> tuple[list[Event], list[str]]:
    events, statuses = [], []
    follow(connection, "standup", events.append, on_status=statuses.append, max_backoff_s=0.01)
    return events, statuses


def test_a_viewer_follows_on_at_the_next_address_without_repeating_itself(replicas):
    a, b = replicas(2)
    failed = Event(K.ERROR, "translation failed")
    a.history, a.viewer_dies = [transcript(0), failed, translation(0), failed, transcript(1)], True
    # b replays the stored history, with what came while the viewer was away
    b.history = [
        transcript(0),
        failed,
        translation(0),
        failed,
        transcript(1),
        Event(K.PARTIAL, "Sa", 2),
        translation(1),
        failed,
        transcript(2),
    ]
    events, statuses = watched(Connection(f"{a.url},{b.url}"))
    assert events == [
        transcript(0),
        failed,
        translation(0),
        failed,
        transcript(1),  # from a
        Event(K.PARTIAL, "Sa", 2),
        translation(1),
        failed,
        transcript(2),
        Event(K.END),
    ]  # from b
    assert statuses[0].startswith("connection lost (") and "Socket closed" in statuses[0]
    assert statuses[1] == f"connected to {b.url}, session standup (moved from {a.url})"


def test_a_viewer_of_a_draining_server_moves_on(replicas):
    a, b = replicas(2)
    a.history = [transcript(0), Event(K.END, error="the server is shutting down: follow the session again in a moment")]
    b.history = [transcript(0), transcript(1)]
    events, _ = watched(Connection(f"{a.url},{b.url}"))
    assert events == [transcript(0), transcript(1), Event(K.END)]


def test_a_viewer_with_one_address_ends_with_its_server(replicas):
    (a,) = replicas(1)
    a.history, a.viewer_dies = [transcript(0)], True
    events = []
    with pytest.raises(ClientError, match="Socket closed"):
        follow(Connection(a.url), "standup", events.append)
    assert events == [transcript(0)]


def test_status_line_names_the_server(capsys):
    outputs = cli_outputs.Outputs("text", None, None, None, K.TRANSLATION)
    outputs.status("connected to host-b:8001, session standup (moved from host-a:8001)")
    assert outputs.state == "connected to host-b:8001"
    outputs.status(f"host-b:8001 refused the stream: {LEASED}; retrying in 1.0 s")
    assert outputs.state == "reconnecting"
