"""Safe to share: who may do what (the allow table in auth_matrix.yaml, every cell run
against a real server over gRPC and HTTP), loopback by default, keys off the process list."""

import base64
import json
import queue
import sys
import urllib.error
import urllib.request
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import yaml
from conftest import ARTIFACTS, free_port

from livetranslate import protocol as P
from livetranslate.launcher import ServerError, ServerOptions, TritonServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from abuse import tensor, text  # noqa: E402

CLIENT_KEY, ADMIN_KEY = "client-key-7f3a9", "admin-key-c21e8"
TABLE = yaml.safe_load((Path(__file__).with_name("auth_matrix.yaml")).read_text())
SESSION = "auth-matrix"


def headers(key: str, grpc: bool) -> dict[str, str]:
    prefix = P.GRPC_HEADER_PREFIX if grpc else ""
    return {
        "none": {},
        "wrong": {prefix + P.API_KEY_HEADER: "wrong", prefix + P.ADMIN_KEY_HEADER: "wrong"},
        "client": {prefix + P.API_KEY_HEADER: CLIENT_KEY},
        "admin": {prefix + P.ADMIN_KEY_HEADER: ADMIN_KEY},
    }[key]


def outcome(message: str) -> str:
    lowered = message.lower()
    if "restricted" in lowered or "expecting header" in lowered:
        return "auth"
    if "internal to the server" in lowered:
        return "internal"
    if "decoupled" in lowered:
        return "unsupported"
    return f"error: {message[:300]}"


PROBE_CONFIG = json.dumps(
    {
        "name": "probe_x",
        "backend": "python",
        "max_batch_size": 0,
        "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": [1]}],
        "output": [{"name": "Y", "data_type": "TYPE_FP32", "dims": [1]}],
    }
)


def probe_model(marker: Path) -> bytes:
    """Code a load_model with a files override would run inside the server."""
    return (
        f"open({str(marker)!r}, 'a').write('ran\\n')\n"
        "class TritonPythonModel:\n"
        "    def execute(self, requests):\n"
        "        return []\n"
    ).encode()


def grpc_stream(url, h, model, tensors, **kw) -> str:
    """One request on a gRPC stream: 'ok' when it ends cleanly, else the first error's outcome."""
    client = grpcclient.InferenceServerClient(url)
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put(error or result), headers=h)
    try:
        try:
            client.async_stream_infer(model, tensors, enable_empty_final_response=True, **kw)
        except Exception as exc:  # the stream failed already: its callback has the reason
            first = answers.get(timeout=10)
            return outcome(str(first if isinstance(first, Exception) else exc))
        while True:
            item = answers.get(timeout=120)
            if isinstance(item, Exception):
                return outcome(str(item))
            response = item.get_response()
            if response.outputs and model == P.PIPELINE:
                error = P.decode_text(item.as_numpy(P.ERROR))
                if error:
                    return f"error: {error}"
            final = response.parameters.get("triton_final_response")
            if final is not None and final.bool_param:
                return "ok"
    finally:
        client.stop_stream(cancel_requests=True)
        client.close()


class Grpc:
    def __init__(self, server, marker):
        self.url, self.marker = server.grpc_url, marker

    def run(self, action: str, key: str) -> str:
        h = headers(key, grpc=True)
        client = grpcclient.InferenceServerClient(self.url)
        try:
            return getattr(self, action)(client, h, key) or "ok"
        except Exception as exc:
            return outcome(str(exc))
        finally:
            client.close()

    def health(self, c, h, key):
        assert c.is_server_live(headers=h)

    def metadata(self, c, h, key):
        c.get_server_metadata(headers=h)

    def speaker_stream(self, c, h, key):
        audio = np.zeros(8000, np.int16)
        tensors = [tensor(P.AUDIO, audio)] + [
            tensor(k, v) for k, v in P.SessionOptions(SESSION, translate=False).to_tensors().items()
        ]
        return grpc_stream(self.url, h, P.PIPELINE, tensors, sequence_id=777, sequence_start=True, sequence_end=True)

    def viewer(self, c, h, key):
        tensors = [tensor(P.AUDIO, np.zeros(0, np.int16)), tensor(P.SUBSCRIBE, text(SESSION))]
        return grpc_stream(self.url, h, P.PIPELINE, tensors, sequence_id=778, sequence_start=True, sequence_end=True)

    def sessions_list(self, c, h, key):
        result = c.infer(P.SESSIONS, [tensor(P.ACTION, text("list")), tensor(P.SESSION, text(""))], headers=h)
        assert SESSION in P.decode_text(result.as_numpy(P.RESULT))

    def llm_direct(self, c, h, key):
        tensors = [
            tensor(P.TEXT_INPUT, text("Write a long story.", batch=True)),
            tensor(P.MAX_TOKENS, np.array([[500]], np.int32)),
        ]
        return grpc_stream(self.url, h, P.LLM, tensors)

    def whisper_direct(self, c, h, key):
        c.infer(P.WHISPER, [tensor(P.AUDIO, np.zeros((1, 16000), np.float32))], headers=h)

    def load_with_files(self, c, h, key):
        c.load_model("probe_x", config=PROBE_CONFIG, files={"file:1/model.py": probe_model(self.marker)}, headers=h)

    def unload(self, c, h, key):
        c.unload_model("probe_x" if key == "admin" else P.PIPELINE, headers=h)

    def shm_register(self, c, h, key):
        region = shared_memory.SharedMemory(create=True, size=64)
        try:
            c.register_system_shared_memory("lt_probe", "/" + region.name, 64, headers=h)
            c.unregister_system_shared_memory("lt_probe", headers=h)
        finally:
            region.close()
            region.unlink()

    def log_settings(self, c, h, key):
        c.update_log_settings({"log_verbose_level": 0}, headers=h)


class Http:
    def __init__(self, server, marker):
        self.url, self.marker = server.http_url, marker

    def request(self, method, path, h, body=None) -> str:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json", **h}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                answer = r.read().decode()
        except urllib.error.HTTPError as exc:
            return outcome(exc.read().decode())
        # generate_stream reports a model's error inside the event stream
        return outcome(answer) if '"error"' in answer else "ok"

    def run(self, action: str, key: str) -> str:
        return getattr(self, action)(headers(key, grpc=False), key)

    def health(self, h, key):
        return self.request("GET", "/v2/health/live", h)

    def metadata(self, h, key):
        return self.request("GET", "/v2", h)

    def speaker_stream(self, h, key):
        body = {
            "parameters": {"sequence_id": 779, "sequence_start": True, "sequence_end": True},
            "inputs": [
                {"name": P.AUDIO, "shape": [4], "datatype": "INT16", "data": [0, 0, 0, 0]},
                {"name": P.SESSION, "shape": [1], "datatype": "BYTES", "data": [SESSION]},
            ],
        }
        return self.request("POST", f"/v2/models/{P.PIPELINE}/infer", h, body)

    def viewer(self, h, key):
        body = {
            "parameters": {"sequence_id": 780, "sequence_start": True, "sequence_end": True},
            "inputs": [
                {"name": P.AUDIO, "shape": [0], "datatype": "INT16", "data": []},
                {"name": P.SUBSCRIBE, "shape": [1], "datatype": "BYTES", "data": [SESSION]},
            ],
        }
        return self.request("POST", f"/v2/models/{P.PIPELINE}/infer", h, body)

    def sessions_list(self, h, key):
        body = {"inputs": [{"name": P.ACTION, "shape": [1], "datatype": "BYTES", "data": ["list"]}]}
        return self.request("POST", f"/v2/models/{P.SESSIONS}/infer", h, body)

    def llm_direct(self, h, key):
        return self.request(
            "POST", f"/v2/models/{P.LLM}/generate_stream", h, {"text_input": "Write a long story.", "max_tokens": 500}
        )

    def whisper_direct(self, h, key):
        body = {"inputs": [{"name": P.AUDIO, "shape": [1, 1600], "datatype": "FP32", "data": [0.0] * 1600}]}
        return self.request("POST", f"/v2/models/{P.WHISPER}/infer", h, body)

    def load_with_files(self, h, key):
        code = base64.b64encode(probe_model(self.marker)).decode()
        return self.request(
            "POST",
            "/v2/repository/models/probe_x/load",
            h,
            {"parameters": {"config": PROBE_CONFIG, "file:1/model.py": code}},
        )

    def unload(self, h, key):
        return self.request(
            "POST", f"/v2/repository/models/{'probe_x' if key == 'admin' else P.PIPELINE}/unload", h, {}
        )

    def shm_register(self, h, key):
        region = shared_memory.SharedMemory(create=True, size=64)
        try:
            result = self.request(
                "POST",
                "/v2/systemsharedmemory/region/lt_probe/register",
                h,
                {"key": "/" + region.name, "offset": 0, "byte_size": 64},
            )
            if result == "ok":
                self.request("POST", "/v2/systemsharedmemory/region/lt_probe/unregister", h, {})
            return result
        finally:
            region.close()
            region.unlink()

    def log_settings(self, h, key):
        return self.request("POST", "/v2/logging", h, {"log_verbose_level": 0})


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """Both keys, the default host (loopback)."""
    ARTIFACTS.mkdir(exist_ok=True)
    options = ServerOptions(
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        llm="gemma3-270m",
        api_key=CLIENT_KEY,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path_factory.mktemp("sessions"),
    )
    with TritonServer(options, log_file=ARTIFACTS / "triton-security.log") as srv:
        yield srv


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_auth_matrix_matches_the_allow_table(keyed_server, protocol, tmp_path):
    marker = tmp_path / "loaded-code-ran"
    runner = (Grpc if protocol == "grpc" else Http)(keyed_server, marker)
    got, ran_for = {}, {}
    for action in TABLE[protocol]:
        got[action] = {}
        for key in TABLE["keys"]:
            got[action][key] = runner.run(action, key)
            if action == "load_with_files":
                ran_for[key] = marker.exists()
                marker.unlink(missing_ok=True)
    assert got == TABLE[protocol]
    # the refusals were real: only the admin's load ran the code it carried
    assert ran_for == {"none": False, "wrong": False, "client": False, "admin": True}
    assert keyed_server.is_ready()


@pytest.mark.slow
def test_server_listens_on_loopback_only_and_keeps_keys_off_the_process_list(keyed_server):
    ports = {keyed_server.options.grpc_port, keyed_server.options.http_port, keyed_server.options.metrics_port}
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:  # LISTEN
                listening.setdefault(int(port, 16), set()).add(address)
    assert set(listening) == ports
    loopback = {
        "0100007F",
        "00000000000000000000000001000000",  # 127.0.0.1, ::1
        "0000000000000000FFFF00000100007F",
    }  # ::ffff:127.0.0.1 (metrics)
    assert all(addresses <= loopback for addresses in listening.values()), listening
    pid = keyed_server.process.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert "--grpc-restricted-protocol" in cmdline
    assert CLIENT_KEY not in cmdline and ADMIN_KEY not in cmdline
    # the model processes inherit neither the keys nor the preload
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert children
    for child in children:
        environ = Path(f"/proc/{child}/environ").read_bytes()
        assert CLIENT_KEY.encode() not in environ and ADMIN_KEY.encode() not in environ
        assert b"LD_PRELOAD" not in environ


def test_binding_beyond_loopback_needs_a_key():
    with pytest.raises(ServerError, match="without a key"):
        ServerOptions(host="0.0.0.0").check_exposure()
    ServerOptions(host="0.0.0.0", api_key="k").check_exposure()
    ServerOptions(host="0.0.0.0", allow_no_key=True).check_exposure()
    ServerOptions().check_exposure()  # loopback by default
    assert ServerOptions().host == "127.0.0.1"
    command = " ".join(ServerOptions(api_key="secret-k", admin_key="secret-a").command(Path("/b")))
    assert "secret-k" not in command and "secret-a" not in command
    for flag in ("--grpc-address=127.0.0.1", "--http-address=127.0.0.1", "--metrics-address=127.0.0.1"):
        assert flag in command
    # with no admin key the admin groups are closed by a key nobody is told
    closed = " ".join(ServerOptions().command(Path("/b")))
    assert "model-repository,model-config,shared-memory,statistics,trace,logging:" in closed
    assert "inference" not in closed


def test_triton_keeps_no_request_for_reuse():
    """Triton's gRPC front end keeps up to 8 request protobufs for reuse, each as large as the
    largest it carried: a client sending 200 MB requests left 0.5 GB more held for good
    (bench/results/oversized-pool8.md against oversized.md)."""
    assert "--grpc-infer-allocation-pool-size=0" in ServerOptions().command(Path("/b"))


def test_serve_refuses_a_network_bind_without_a_key_in_plain_words():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in (P.API_KEY_ENV, P.ADMIN_KEY_ENV)}
    out = subprocess.run(
        [sys.executable, "-m", "livetranslate.cli", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode != 0 and "refusing to listen on 0.0.0.0 without a key" in out.stderr
    assert "Traceback" not in out.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "livetranslate.cli", "serve", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "--insecure-no-key" in help_text and "--api-key-file" in help_text and "--api-key " not in help_text
