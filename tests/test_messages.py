"""What users read when something is wrong: each message says what and what to do. Fast:
real local servers of the kinds a user points `--url` at by mistake (plain HTTP, gRPC over
TLS, nothing), the CLI through click, uploads decoded by PyAV. Triton itself: test_serve.py."""

import http.server
import io
import subprocess
import threading
from concurrent import futures

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import free_port

from livetranslate import cli
from livetranslate.cli import options as cli_options
from livetranslate.cli import outputs as cli_outputs
from livetranslate.client import ClientError, Connection, PipelineClient, normalize_url
from livetranslate.languages import NAMES, UnknownLanguage, code_for
from livetranslate.protocol import Event, ProtocolError, SessionOptions
from livetranslate.protocol import EventKind as K


# --- where the server is ----------------------------------------------------------------
@pytest.mark.parametrize(
    "url, expected",
    [
        ("localhost:8001", ("localhost:8001", False)),
        ("http://localhost:8001", ("localhost:8001", False)),
        ("grpc://10.0.0.5:9001/", ("10.0.0.5:9001", False)),
        ("https://example.org:8001", ("example.org:8001", True)),
        ("grpcs://example.org", ("example.org:8001", True)),
        ("example.org", ("example.org:8001", False)),
        ("[::1]:8001", ("[::1]:8001", False)),
    ],
)
def test_urls_as_users_write_them(url, expected):
    assert normalize_url(url) == expected
    assert (Connection(url).url, Connection(url).tls) == expected


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://localhost:8000/v2/health", "a gRPC address has no path; give host:port"),
        ("ftp://localhost:8001", "unknown scheme ftp://; give the gRPC address as host:port"),
        ("localhost:http", "the port must be a number from 1 to 65535"),
        (":8001", "no host; give host:port"),
    ],
)
def test_unusable_urls_say_how_to_write_one(url, says):
    with pytest.raises(ClientError, match="e.g. localhost:8001") as caught:
        normalize_url(url)
    assert says in str(caught.value)


@pytest.fixture
def http_port():
    """A plain HTTP server, as Triton's HTTP and metrics ports are."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_url_at_an_http_port_says_so_and_names_the_grpc_port(http_port):
    with pytest.raises(ClientError) as caught:
        PipelineClient(f"http://127.0.0.1:{http_port}", timeout_s=3)
    message = str(caught.value)
    assert f"127.0.0.1:{http_port} answers HTTP: it is Triton's HTTP (or metrics) port, not its gRPC port" in message
    assert "Point --url at the gRPC port (127.0.0.1:8001" in message
    assert "TLS" not in message and "Misformatted" not in message


def test_nothing_listening_says_start_the_server():
    port = free_port()
    with pytest.raises(ClientError) as caught:
        PipelineClient(f"127.0.0.1:{port}", timeout_s=3)
    assert str(caught.value) == (
        f"cannot reach the livetranslate server at 127.0.0.1:{port}: nothing answers there. "
        f"Is it running? Start it with `livetranslate serve`, or check --url"
    )


def test_unknown_host_is_named():
    with pytest.raises(ClientError, match="no host named 'no-such-host.invalid' \\(check --url\\)"):
        PipelineClient("no-such-host.invalid:8001", timeout_s=3)


@pytest.fixture(scope="module")
def tls_grpc_port(tmp_path_factory):
    """A real gRPC server that only speaks TLS (a self-signed certificate)."""
    import grpc

    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    credentials = grpc.ssl_server_credentials([((folder / "key.pem").read_bytes(), (folder / "cert.pem").read_bytes())])
    server = grpc.server(futures.ThreadPoolExecutor(1))
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield port
    server.stop(None)


def test_plain_client_at_a_tls_server_says_use_tls(tls_grpc_port):
    with pytest.raises(ClientError) as caught:
        PipelineClient(f"127.0.0.1:{tls_grpc_port}", timeout_s=3)
    assert str(caught.value).startswith(f"the server at 127.0.0.1:{tls_grpc_port} uses TLS: connect with --tls")


def test_tls_client_at_an_untrusted_certificate_says_give_ca(tls_grpc_port):
    with pytest.raises(ClientError, match="uses TLS but its certificate is not trusted: give --ca"):
        PipelineClient(Connection(f"127.0.0.1:{tls_grpc_port}", tls=True), timeout_s=3)


def test_tls_client_at_a_plain_port_says_drop_tls():
    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(ClientError, match=f"127.0.0.1:{port} does not use TLS: connect without --tls"):
            PipelineClient(f"grpcs://127.0.0.1:{port}", timeout_s=3)
    finally:
        server.stop(None)


def test_cli_bad_url_is_one_plain_line():
    result = CliRunner().invoke(cli.main, ["sessions", "--url", "ftp://localhost:8001"])
    assert result.exit_code == 1 and result.output.startswith("Error: --url 'ftp://localhost:8001': unknown scheme")
    assert "Traceback" not in result.output


# --- languages ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, code",
    [
        ("de", "de"),
        ("DE", "de"),
        ("german", "de"),
        ("Deutsch", "de"),
        ("de-DE", "de"),
        ("pt_BR", "pt"),
        ("Français", "fr"),
        ("Cantonese", "yue"),
    ],
)
def test_languages_by_code_or_name(text, code):
    assert code_for(text) == code


def test_every_whisper_language_has_a_name():
    from livetranslate.protocol import WHISPER_LANGUAGES

    assert set(NAMES) == WHISPER_LANGUAGES


def test_an_unknown_language_says_how_to_write_it():
    with pytest.raises(UnknownLanguage) as caught:
        code_for("germn", allow_auto=True)
    assert str(caught.value) == (
        "unknown language 'germn' (did you mean German, de?): use a code such as de or a name "
        "such as German, or auto to detect it (`livetranslate languages` lists them)"
    )
    with pytest.raises(UnknownLanguage, match="'klingon': use a code such as de"):
        code_for("klingon")
    with pytest.raises(UnknownLanguage):
        code_for("auto")  # a translation needs a language


def test_session_options_take_names_from_any_client():
    options = SessionOptions("s", source_language="German", target_language="english")
    assert (options.source_language, options.target_language) == ("de", "en")
    with pytest.raises(ProtocolError, match="spoken language \\(SOURCE_LANGUAGE\\): unknown language 'xx'"):
        SessionOptions("s", source_language="xx")


def test_cli_language_option_says_how_to_write_it(tmp_path):
    result = CliRunner().invoke(cli.main, ["stream", str(tmp_path / "talk.wav"), "--language", "germna"])
    assert result.exit_code == 2
    assert "Invalid value for '--language': unknown language 'germna' (did you mean German, de?)" in result.output
    result = CliRunner().invoke(cli.main, ["languages"])
    assert result.exit_code == 0 and "de   German" in result.output and "auto" in result.output


# --- sessions --------------------------------------------------------------------------
def test_a_missing_session_points_at_the_list():
    assert (
        cli_options.session_hint("no session named 'x'")
        == "no session named 'x': `livetranslate sessions` lists the stored sessions"
    )
    assert cli_options.session_hint("server full") == "server full"


# --- uploads (the dashboard) ----------------------------------------------------------
def _wav_bytes(seconds: float) -> bytes:
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, np.zeros(int(16000 * seconds), np.int16), 16000, format="WAV")
    return out.getvalue()


@pytest.mark.parametrize(
    "data, suffix, says",
    [
        (b"not audio at all\n" * 50, ".txt", "no sound (no audio track)"),
        (b"%PDF-1.4\n" + bytes(range(256)) * 4, ".pdf", "not an audio file: ffmpeg cannot read it"),
        (b"", ".wav", "not an audio file: ffmpeg cannot read it"),
        (_wav_bytes(1.0)[:60], ".wav", "holds no sound ffmpeg can decode"),
    ],
)
def test_a_non_audio_upload_says_so_without_a_path(tmp_path, data, suffix, says):
    from livetranslate.dashboard import UploadedAudio, UploadError

    with pytest.raises(UploadError) as caught:
        UploadedAudio(io.BytesIO(data), suffix, max_bytes=10**6, tmp_dir=tmp_path)
    message = str(caught.value)
    assert says in message and "Upload a recording such as wav, mp3" in message
    assert str(tmp_path) not in message and "/" not in message and "upload" + suffix not in message
    assert not list(tmp_path.iterdir())  # and its temporary copy is gone


# --- the combined translation in the piped text format ----------------------------------
def _events():
    yield Event(K.TRANSCRIPT, "Eins.", 0, 0.0, 1.0, "de")
    yield Event(K.TRANSLATION, "One.", 0, 0.0, 1.0, "en")
    yield Event(K.ENHANCED, "One", 0, 0.0, 1.0, "en", first_segment_id=0)  # adds nothing
    yield Event(K.TRANSCRIPT, "Zwei.", 1, 2.0, 3.0, "de")
    yield Event(K.TRANSLATION, "Two.", 1, 2.0, 3.0, "en")
    yield Event(K.ENHANCED, "One, two.", 1, 0.0, 3.0, "en", first_segment_id=0)  # two sentences together
    yield Event(K.ENHANCED, "", 1, 0.0, 3.0, "en", first_segment_id=1, error="timed out")  # nothing to show
    yield Event(K.END, end_s=3.0)


def test_text_shows_a_combined_translation_only_when_it_adds_something(capsys, tmp_path):
    outputs = cli_outputs.Outputs("text", tmp_path / "all.jsonl", None, None, K.TRANSLATION)
    for event in _events():
        outputs.event(event)
    outputs.close()
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "|" in line and "en" in line.split("|")[0]] == [
        "00:00.0 #0 en | One.",  # no latency where the server measured none
        "00:02.0 #1 en | Two.",
        "00:00.0 #0-1 en | One, two. (improved)",
    ]
    assert len(out) == 6 and out[-1] == "-- end of stream (00:03.0 of audio)"
    kept = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(kept) == len(list(_events()))  # the data keeps every event


def test_jsonl_keeps_every_combined_translation(capsys):
    outputs = cli_outputs.Outputs("jsonl", None, None, None, K.TRANSLATION)
    for event in _events():
        outputs.event(event)
    outputs.close()
    assert sum('"enhanced"' in line for line in capsys.readouterr().out.splitlines()) == 3
