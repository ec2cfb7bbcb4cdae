"""What the dashboard computes, without Streamlit or a server."""

from livetranslate.dashboard import Endpoints, rates


def test_dashboard_throughput_from_counter_samples():
    history = [(100.0, {"whisper": {"nv_inference_request_success": 10}}),
               (102.0, {"whisper": {"nv_inference_request_success": 14}, "llm": {"nv_inference_request_success": 3}}),
               (104.0, {"whisper": {"nv_inference_request_success": 2}})]  # the server restarted
    assert rates(history) == [{"t": 2.0, "llm": 1.5, "whisper": 2.0}, {"t": 4.0, "whisper": 0.0}]


def test_dashboard_reaches_a_secured_server_like_any_client(monkeypatch):
    from livetranslate import protocol as P

    connection = Endpoints(grpc="triton:8001", tls=True, ca="/etc/ca.pem", api_key="k").connection()
    assert connection.tls and connection.ca == "/etc/ca.pem" and connection.headers == {P.GRPC_API_KEY_HEADER: "k"}


def test_endpoints_come_from_the_environment_when_made(monkeypatch):
    monkeypatch.setenv("LIVETRANSLATE_URL", "elsewhere:9001")
    monkeypatch.setenv("LIVETRANSLATE_TLS", "1")
    endpoints = Endpoints()
    assert endpoints.grpc == "elsewhere:9001" and endpoints.tls and endpoints.http == "http://localhost:8000"
