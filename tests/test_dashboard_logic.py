"""What the dashboard computes and who may see it, without a server: the logic, the
`livetranslate dashboard` command, uploads, and the page before and after a login (AppTest)."""

import io
import re
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from livetranslate import cli
from livetranslate import dashboard as D
from livetranslate.cli import dashboard as cli_dashboard
from livetranslate.dashboard import Endpoints, rates

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def test_dashboard_throughput_from_counter_samples():
    history = [
        (100.0, {"whisper": {"nv_inference_request_success": 10}}),
        (102.0, {"whisper": {"nv_inference_request_success": 14}, "llm": {"nv_inference_request_success": 3}}),
        (104.0, {"whisper": {"nv_inference_request_success": 2}}),
    ]  # the server restarted
    assert rates(history) == [{"t": 2.0, "llm": 1.5, "whisper": 2.0}, {"t": 4.0, "whisper": 0.0}]


def test_dashboard_reaches_a_secured_server_like_any_client(monkeypatch):
    from livetranslate import protocol as P

    connection = Endpoints(grpc="triton:8001", tls=True, ca="/etc/ca.pem", api_key="k").connection()
    assert connection.tls and connection.ca == "/etc/ca.pem" and connection.headers == {P.GRPC_API_KEY_HEADER: "k"}


def test_endpoints_come_from_the_environment_when_made(monkeypatch):
    monkeypatch.setenv("LIVETRANSLATE_URL", "elsewhere:9001")
    monkeypatch.setenv("LIVETRANSLATE_TLS", "1")
    endpoints = Endpoints()
    # one setting per server: HTTP and metrics default to the gRPC host, on Triton's ports
    assert endpoints.grpc == "elsewhere:9001" and endpoints.tls and endpoints.http == "http://elsewhere:8000"
    assert endpoints.metrics == "http://elsewhere:8002/metrics"
    monkeypatch.setenv("LIVETRANSLATE_METRICS_URL", "http://prometheus-side:9100/metrics")
    assert Endpoints().metrics == "http://prometheus-side:9100/metrics"
    assert Endpoints(grpc="[::1]:8001,b:8001").http == "http://[::1]:8000"


# --- who may see it -------------------------------------------------------------------------


def test_the_dashboard_is_open_only_with_a_login_or_on_loopback():
    assert D.access_mode("0.0.0.0", {D.CREDENTIALS_ENV: "/etc/users.yaml"}) == "login"
    for address in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert D.access_mode(address, {D.NO_LOGIN_ENV: "1"}) == "open"
    for address in ("0.0.0.0", "", None, "::", "192.168.1.5", "dashboard.example"):
        with pytest.raises(D.AccessError, match="loopback"):
            D.access_mode(address, {D.NO_LOGIN_ENV: "1"})
    with pytest.raises(D.AccessError, match="--add-user NAME --credentials FILE"):
        D.access_mode("127.0.0.1", {})


def test_add_user_writes_a_bcrypt_hash_readable_only_by_its_owner(tmp_path):
    import bcrypt

    path = tmp_path / "users.yaml"
    D.add_user(path, "Alice", "correct horse")
    D.add_user(path, "bob", " battery staple ")  # the login form strips the password: so do we
    D.add_user(path, "alice", "new password")  # a known user: a new password, no duplicate
    text = path.read_text()
    assert "correct horse" not in text and "staple" not in text and "new password" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = D.load_credentials(path)["usernames"]
    assert sorted(users) == ["alice", "bob"]
    assert bcrypt.checkpw(b"new password", users["alice"]["password"].encode())
    assert bcrypt.checkpw(b"battery staple", users["bob"]["password"].encode())
    assert not bcrypt.checkpw(b"correct horse", users["alice"]["password"].encode())
    with pytest.raises(D.CredentialsError, match="empty"):
        D.add_user(path, "carol", "   ")


def test_a_plain_text_password_in_the_credentials_file_is_refused(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("credentials:\n  usernames:\n    alice:\n      name: Alice\n      password: hunter2\n")
    with pytest.raises(D.CredentialsError, match="not a bcrypt hash"):
        D.load_credentials(path)
    path.write_text("credentials:\n  usernames: {}\n")
    with pytest.raises(D.CredentialsError, match="no users"):
        D.load_credentials(path)


@pytest.fixture
def exec_calls(monkeypatch, tmp_path):
    """`livetranslate dashboard` execs streamlit: record what it would run instead."""
    calls = []
    monkeypatch.setattr(cli_dashboard.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    for name in (D.CREDENTIALS_ENV, D.NO_LOGIN_ENV, "LIVETRANSLATE_API_KEY", D.COOKIE_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIVETRANSLATE_DASHBOARD_KEY_FILE", str(tmp_path / "dashboard.key"))  # not the user's
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return calls


def handoff(argv: list[str]) -> dict[str, str]:
    """The settings file `livetranslate dashboard` hands to the app (`-- --settings FILE`)."""
    import json
    import stat

    path = Path(argv[argv.index("--settings") + 1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())


def test_dashboard_command_refuses_to_start_without_a_login(exec_calls):
    out = CliRunner().invoke(cli.main, ["dashboard"])
    assert out.exit_code != 0 and "--add-user NAME --credentials FILE" in out.output
    out = CliRunner().invoke(cli.main, ["dashboard", "--no-login", "--host", "0.0.0.0"])
    assert out.exit_code != 0 and "loopback" in out.output
    assert not exec_calls


def test_dashboard_command_binds_to_loopback_and_keeps_secrets_off_the_command_line(exec_calls, tmp_path):
    users = tmp_path / "users.yaml"
    out = CliRunner().invoke(
        cli.main, ["dashboard", "--add-user", "alice", "--credentials", str(users)], input="s3cret-Pass\n"
    )
    assert out.exit_code == 0, out.output
    assert D.load_credentials(users)["usernames"]["alice"]["password"].startswith("$2")
    out = CliRunner().invoke(
        cli.main,
        ["dashboard", "--credentials", str(users), "--max-upload-mb", "50"],
        env={"LIVETRANSLATE_API_KEY": "the-api-key"},
    )
    assert out.exit_code == 0, out.output
    ((argv, env),) = exec_calls
    command_line = " ".join(argv)
    assert "--server.address 127.0.0.1" in command_line and "--server.maxUploadSize 50" in command_line
    assert "--client.showErrorDetails type" in command_line
    assert "the-api-key" not in command_line and "s3cret" not in command_line
    handed = handoff(argv)  # the settings: in a file named on the command line, readable by its owner only
    assert env["LIVETRANSLATE_API_KEY"] == "the-api-key" and handed[D.CREDENTIALS_ENV] == str(users.resolve())
    assert handed[D.NO_LOGIN_ENV] == "0" and handed[D.MAX_UPLOAD_ENV] == "50"
    assert not any(name in env for name in handed)  # not through the environment
    assert handed["LIVETRANSLATE_URL"] == "localhost:8001" and handed["LIVETRANSLATE_HTTP_URL"] == ""
    out = CliRunner().invoke(cli.main, ["dashboard", "--no-login"])
    assert out.exit_code == 0 and handoff(exec_calls[-1][0])[D.NO_LOGIN_ENV] == "1"
    assert "--server.address 127.0.0.1" in " ".join(exec_calls[-1][0])


# --- the page before and after a login ----------------------------------------------------
@pytest.fixture
def listener():
    """One port standing in for every server address: counts who connects to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    connections = []

    def accept():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            connections.append(conn)
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield sock.getsockname()[1], connections
    sock.close()


def app_with_users(monkeypatch, tmp_path, port):
    from streamlit.testing.v1 import AppTest

    users = tmp_path / "users.yaml"
    D.add_user(users, "alice", "right-password")
    monkeypatch.setenv(D.CREDENTIALS_ENV, str(users))
    monkeypatch.delenv(D.NO_LOGIN_ENV, raising=False)
    monkeypatch.setenv("LIVETRANSLATE_URL", f"127.0.0.1:{port}")
    monkeypatch.setenv("LIVETRANSLATE_HTTP_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LIVETRANSLATE_METRICS_URL", f"http://127.0.0.1:{port}/metrics")
    return AppTest.from_file(str(APP), default_timeout=30)


def log_in(at, user, password):
    [name_box] = [t for t in at.text_input if t.label == "User name"]
    [password_box] = [t for t in at.text_input if t.label == "Password"]
    name_box.input(user)
    password_box.input(password)
    [button] = [b for b in at.button if b.label == "Log in"]
    return button.click().run()


def test_before_a_login_the_page_is_the_login_form_and_nothing_reaches_the_server(monkeypatch, tmp_path, listener):
    port, connections = listener
    at = app_with_users(monkeypatch, tmp_path, port).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert not at.sidebar.children  # no health, no model states
    assert not at.radio and not at.selectbox
    log_in(at, "alice", "wrong-password")
    assert not at.exception and [e.value for e in at.error] == ["Wrong user name or password"]
    assert not at.radio and not at.selectbox and not at.sidebar.children
    assert connections == []  # the server was not asked anything on the visitor's behalf
    log_in(at, "alice", "right-password")  # (the stand-in server then fails the app's requests)
    assert not at.exception and "Wrong user name or password" not in [e.value for e in at.error]
    assert [r.options for r in at.radio] == [["Sessions", "New session from a file"]]
    # the stand-in is no server: said once, plainly, and not as "no sessions yet"
    assert [e.value for e in at.main.error if e.value.startswith("Server unavailable")]
    assert not [i for i in at.info if "No sessions yet" in i.value]
    assert any("alice" in c.value for c in at.sidebar.caption)
    assert connections  # now it asks the server


def test_no_login_is_refused_unless_the_dashboard_listens_on_loopback(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv(D.CREDENTIALS_ENV, raising=False)
    monkeypatch.setenv(D.NO_LOGIN_ENV, "1")  # as if started by hand with `streamlit run`, on every interface
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and not at.radio and not at.text_input
    assert "loopback" in " ".join(t.value for t in at.text)


# --- uploads -------------------------------------------------------------------------------
def wav_bytes(seconds: float, rate: int = 44_100, channels: int = 2) -> bytes:
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = io.BytesIO()
    soundfile.write(out, np.stack([tone] * channels, axis=1), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_an_upload_streams_in_chunks_from_a_temporary_file_removed_afterwards(tmp_path):
    with D.UploadedAudio(
        io.BytesIO(wav_bytes(3.0)), ".wav", max_bytes=2**20, realtime=False, tmp_dir=tmp_path
    ) as audio:
        (folder,) = tmp_path.iterdir()
        assert audio.rate == 16_000 and abs(audio.seconds - 3.0) < 0.01
        parts = iter(audio)
        first = next(parts)
        assert first.dtype == np.int16 and len(first) == 1600 and np.abs(first).max() > 5000
        rest = list(parts)
    assert all(len(p) == 1600 for p in rest[:-1])
    assert abs(len(first) + sum(map(len, rest)) - 3 * 16_000) <= 32
    assert not folder.exists() and not list(tmp_path.iterdir())


def test_an_upload_that_is_too_large_or_not_audio_leaves_nothing_behind(tmp_path):
    with pytest.raises(D.UploadError, match="larger than the limit of 1 MB"):
        D.UploadedAudio(io.BytesIO(wav_bytes(20.0)), ".wav", max_bytes=2**20, tmp_dir=tmp_path)
    with pytest.raises(D.UploadError, match="not an audio file"):
        D.UploadedAudio(io.BytesIO(b"<html>not audio</html>" * 100), ".mp3", max_bytes=2**20, tmp_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_closing_an_upload_mid_stream_stops_it_and_removes_the_file(tmp_path):
    audio = D.UploadedAudio(io.BytesIO(wav_bytes(5.0)), ".wav", max_bytes=2**22, realtime=False, tmp_dir=tmp_path)
    parts = iter(audio)
    next(parts)
    audio.close()
    assert list(parts) == [] and not list(tmp_path.iterdir())
    audio.close()  # twice is fine


def test_markdown_is_escaped_for_the_elements_that_render_it():
    hostile = "![x](http://evil/x.png) <img src=x onerror=alert(1)> [link](http://evil) :red[x] **b**"
    escaped = D.escape_markdown(hostile)
    assert not re.search(r"(?<!\\)[!\[\]()<>:*=]", escaped)  # every one of them escaped
    assert escaped.replace("\\", "") == hostile


def test_model_states_come_from_the_health_api_when_the_repository_index_is_for_admins():
    """A server started with keys keeps the repository index for its admin key; the dashboard
    holds the client key only and asks each model's readiness instead."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Triton(BaseHTTPRequestHandler):
        def do_GET(self):
            ready = self.path in ("/v2/health/live", "/v2/models/pipeline/ready", "/v2/models/whisper/ready")
            self.send_response(200 if ready else 400)
            self.end_headers()

        def do_POST(self):
            self.send_response(403)  # /v2/repository/index without the admin key
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Triton)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        state = D.health(Endpoints(http=f"http://127.0.0.1:{server.server_port}"))
    finally:
        server.shutdown()
    assert state["ready"] and not state["error"]
    assert state["models"]["pipeline"] == state["models"]["whisper"] == "READY"
    assert state["models"]["llm"] == "not ready" and set(state["models"]) == set(D.MODELS)
