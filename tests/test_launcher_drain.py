"""The launcher's side of a stop, with fakes (fast): its health endpoint (/ready goes 503 the
moment it stops, /live stays 200), and the stop sequence: not ready first, then the drain
with the grace (the pipeline's partial answer reported, a second signal cutting the grace
short), then Triton's SIGTERM, all within stop_bound_s. The drain requests go to a real
Pipeline over the stage seam (tests/scripted.py) through a fake gRPC client."""

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from scripted import Clock, ScriptedStages, Speaker, kinds, wait_for

from livetranslate import protocol as P
from livetranslate.launcher import DRAIN_TIMEOUT_S, ServerOptions, TritonServer, stop_bound_s
from livetranslate.launcher.health import HealthServer
from livetranslate.pipeline import Pipeline, PipelineOptions
from livetranslate.pipeline.streaming import DecodeOptions


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_health_endpoint_says_ready_until_the_launcher_says_otherwise():
    state = {"ready": (False, "starting: the models are loading")}
    with HealthServer("127.0.0.1", 0, lambda: state["ready"]) as health:
        base = f"http://127.0.0.1:{health.port}"
        assert get(f"{base}/ready") == (503, "starting: the models are loading\n")
        assert get(f"{base}/live") == (200, "live\n")
        state["ready"] = (True, "ready")
        assert get(f"{base}/ready") == (200, "ready\n")
        state["ready"] = (False, "draining: this server is shutting down")
        assert get(f"{base}/ready") == (503, "draining: this server is shutting down\n")
        assert get(f"{base}/live") == (200, "live\n")  # still running: no restart while it drains
        assert get(f"{base}/v2/health/ready")[0] == 404
        head = urllib.request.Request(f"{base}/live", method="HEAD")
        with urllib.request.urlopen(head, timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b""


def test_a_readiness_that_fails_answers_not_ready():
    def broken():
        raise OSError("no route")

    with HealthServer("127.0.0.1", 0, broken) as health:
        assert get(f"http://127.0.0.1:{health.port}/ready") == (503, "readiness unknown: no route\n")


def test_the_health_port_binds_where_it_is_told_and_refuses_a_taken_port():
    with HealthServer("127.0.0.1", 0, lambda: (True, "ready")) as health:
        assert health._server.server_address[0] == "127.0.0.1"
        with pytest.raises(OSError):
            HealthServer("127.0.0.1", health.port, lambda: (True, "ready"))


class FakeProcess:
    """tritonserver as stop() sees it: running until SIGTERM."""

    def __init__(self, events: list):
        self.events, self.returncode, self.pid = events, None, 0

    def poll(self):
        return self.returncode

    def send_signal(self, sig):
        self.events.append(("signal", sig))
        self.returncode = 0

    def wait(self, timeout=None):
        return self.returncode


def running_server(grace_s: float, events: list) -> TritonServer:
    server = TritonServer(ServerOptions(drain_grace_s=grace_s))
    server.process = FakeProcess(events)
    server.ready_after_s = 1.0
    server.is_ready = lambda: True  # Triton's own readiness stays true while it drains
    return server


def test_stop_says_not_ready_before_it_drains_and_drains_before_triton_stops():
    import signal

    events: list = []
    server = running_server(7.5, events)
    assert server.readiness() == (True, "ready")

    def drain(grace_s, say):
        events.append(("drain", grace_s, server.readiness()))
        say("refusing")

    server.drain = drain
    said: list[str] = []
    server.stop(say=said.append)
    assert events == [("drain", 7.5, (False, "draining: this server is shutting down")), ("signal", signal.SIGTERM)]
    assert said == ["refusing"]


def test_the_stop_bound_covers_the_grace_the_drain_and_tritons_exit():
    assert stop_bound_s(20, 10) == 20 + DRAIN_TIMEOUT_S + 10 + 5
    assert stop_bound_s(0, 10) < stop_bound_s(3, 10)


class FakeResult:
    def __init__(self, event):
        self.tensors = event.to_tensors()

    def as_numpy(self, name):
        return self.tensors[name]


class FakeGrpcClient:
    """tritonclient.grpc's client, answered by a real Pipeline: each async_stream_infer is a
    request to `pipeline`, each event it sends back a result to the stream's callback."""

    def __init__(self, pipeline, sent: list):
        self.pipeline, self.sent, self.callback, self.stopped = pipeline, sent, None, None

    def start_stream(self, callback, headers=None):
        self.callback = callback

    def async_stream_infer(self, model, inputs, sequence_id, sequence_start, sequence_end, parameters):
        assert model == P.PIPELINE and sequence_start and sequence_end
        tensors = {i.name(): i._np for i in inputs}
        self.sent.append((sequence_id, float(tensors[P.DRAIN_GRACE_S][0])))
        callback = self.callback

        class Reply:
            def send(self, event):
                callback(FakeResult(event), None)

            def close(self):
                pass

        internal = parameters.get(P.INTERNAL_PARAMETER) == "launcher-token"
        self.pipeline.handle(sequence_id, True, True, tensors.get, Reply(), internal=lambda: internal)

    def stop_stream(self, cancel_requests=False):
        self.stopped = cancel_requests

    def close(self):
        pass


@pytest.fixture
def fake_grpc(monkeypatch):
    import tritonclient.grpc as grpcclient

    real_input = grpcclient.InferInput

    class Input(real_input):  # keeps the array it was given, for the fake client
        def set_data_from_numpy(self, array):
            self._np = array
            return super().set_data_from_numpy(array)

    monkeypatch.setattr(grpcclient, "InferInput", Input)
    clock = Clock()
    pipeline = Pipeline(
        ScriptedStages(clock),
        PipelineOptions(decode=DecodeOptions(policy="utterance", lead_in_s=0.0, prompt_segments=0)),
        clock=clock,
        end_sequence=lambda _: None,
    )
    sent: list = []
    clients: list = []

    def client(url, **kw):
        clients.append(FakeGrpcClient(pipeline, sent))
        return clients[-1]

    monkeypatch.setattr(grpcclient, "InferenceServerClient", client)
    return pipeline, clock, sent, clients


def launcher(grace_s: float) -> TritonServer:
    server = TritonServer(ServerOptions(drain_grace_s=grace_s))
    server.options.internal_token = "launcher-token"
    return server


def test_the_launchers_drain_waits_out_the_grace_while_a_stream_lives_and_a_second_signal_cuts_it(fake_grpc):
    pipeline, clock, sent, clients = fake_grpc
    speaker = Speaker(pipeline, clock, 5, session="live", translate=False)
    speaker.say(1)
    server = launcher(60.0)
    said: list[str] = []
    result: list[bool] = []
    began = time.monotonic()
    drainer = threading.Thread(target=lambda: result.append(server.drain(60.0, say=said.append)))
    drainer.start()
    assert wait_for(lambda: said)  # the pipeline's word that it refuses, before the grace ends
    assert said == ["refusing new speakers and viewers; 1 stream(s) live, ending them within 60 s"]
    assert pipeline.stopping and pipeline.open_streams()
    speaker.say(2)  # the live stream carries on during the grace
    assert len(kinds(speaker.events, P.EventKind.TRANSCRIPT)) == 2
    assert drainer.is_alive()
    server.hurry()  # a second Ctrl-C or SIGTERM
    drainer.join(10)
    assert not drainer.is_alive() and result == [True] and time.monotonic() - began < 10
    assert [grace for _, grace in sent] == [60.0, 0.0] and len({sequence for sequence, _ in sent}) == 2
    assert clients[0].stopped is False  # every request answered: the stream closes without cancelling
    assert wait_for(lambda: not pipeline.open_streams())


def test_the_launchers_drain_ends_when_the_last_stream_does(fake_grpc):
    pipeline, clock, sent, _ = fake_grpc
    speaker = Speaker(pipeline, clock, 6, session="ending", translate=False)
    speaker.say(1)
    server = launcher(60.0)
    result: list[bool] = []
    drainer = threading.Thread(target=lambda: result.append(server.drain(60.0)))
    drainer.start()
    assert wait_for(lambda: pipeline.stopping)
    time.sleep(0.3)
    assert drainer.is_alive()
    speaker.end()
    drainer.join(10)
    assert result == [True] and [grace for _, grace in sent] == [60.0]


def test_the_launchers_drain_gives_up_after_the_grace_and_its_timeout(fake_grpc, monkeypatch):
    """A pipeline that never answers: the drain returns within grace + timeout, and cancels."""
    pipeline, _, sent, clients = fake_grpc
    monkeypatch.setattr(pipeline, "handle", lambda *a, **kw: None)
    began = time.monotonic()
    assert launcher(0.5).drain(0.5, timeout_s=0.5) is False
    assert 1.0 <= time.monotonic() - began < 3.0
    assert clients[0].stopped is True


@pytest.mark.parametrize("argv, grace", [([], P.DEFAULT_DRAIN_GRACE_S), (["--drain-grace-s", "12.5"], 12.5)])
def test_serve_takes_the_grace_and_the_health_port_from_options_or_the_environment(argv, grace, monkeypatch):
    from click.testing import CliRunner

    from livetranslate import cli
    from livetranslate.cli import server as cli_server

    seen = {}

    def fake_start(server):
        seen["grace"] = server.options.drain_grace_s
        raise KeyboardInterrupt  # as a SIGTERM during start-up would

    monkeypatch.setattr(cli_server, "_start", fake_start)

    def fake_health(server, port):
        seen["health"] = port

    monkeypatch.setattr(cli_server, "_health", fake_health)
    result = CliRunner().invoke(
        cli.main, ["serve", "--log-file", "-", *argv], env={"LIVETRANSLATE_HEALTH_PORT": "18003"}
    )
    assert result.exit_code == 0, result.output
    assert seen == {"grace": grace, "health": 18003}
    env = CliRunner().invoke(cli.main, ["serve", "--log-file", "-"], env={P.DRAIN_GRACE_ENV: "20"})
    assert env.exit_code == 0 and seen["grace"] == 20.0


def test_serve_refuses_a_taken_health_port_in_plain_words():
    with HealthServer("127.0.0.1", 0, lambda: (True, "ready")) as taken:
        result = subprocess.run(
            [sys.executable, "-m", "livetranslate.cli", "serve", "--log-file", "-", "--health-port", str(taken.port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot serve health on 127.0.0.1:{taken.port}" in result.stderr
    assert "choose another --health-port" in result.stderr


def test_a_refused_drain_is_reported_at_once_not_waited_for(fake_grpc):
    """A pipeline that refuses the drain (a wrong internal token) answers with an error: the
    launcher says so and goes on to stop Triton, without waiting out grace and timeout."""
    pipeline, _, _, clients = fake_grpc
    server = launcher(60.0)
    server.options.internal_token = "not-the-launchers"
    said: list[str] = []
    began = time.monotonic()
    assert server.drain(60.0, say=said.append) is False
    assert time.monotonic() - began < 5 and not pipeline.stopping
    assert said == ["the drain failed: DRAIN is for the server's own launcher"]
    assert clients[0].stopped is False  # it was answered: the stream closes normally
