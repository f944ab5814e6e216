"""The optional bearer token, and the Prometheus metrics a scrape sees."""

from __future__ import annotations

import pytest

from .conftest import TOKEN
from .harness import metric_value

pytestmark = pytest.mark.serving

ROW = [0.25] * 64
PROTECTED = [
    ("POST", "/predict", {"inputs": [ROW]}),
    ("POST", "/v1/models/digits:predict", {"instances": [ROW]}),
    ("POST", "/v1/models/digits:explain", {"instances": [ROW]}),
    (
        "POST",
        "/v2/models/digits/infer",
        {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]},
    ),
    ("GET", "/v2/models/digits", None),
    ("GET", "/v2", None),
    ("GET", "/openapi.json", None),
    ("GET", "/v1/models", None),
]
EXEMPT = ["/v2/health/live", "/v2/health/ready", "/v2/models/digits/ready", "/v1/models/digits", "/metrics"]
WRONG = "not-the-token"


@pytest.fixture(scope="module")
def auth_server(start_server, digits_dir):
    return start_server(digits_dir, "--name", "digits", env={"LMAAS_AUTH_TOKEN": TOKEN, "LMAAS_LOG_LEVEL": "DEBUG"})


@pytest.mark.parametrize("method, path, body", PROTECTED)
def test_protected_endpoints_need_the_token(auth_server, method, path, body):
    missing = auth_server.request(method, path, body)
    assert missing.status == 401 and "bearer token" in missing.error
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for header in (f"Bearer {WRONG}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN):
        wrong = auth_server.request(method, path, body, headers={"Authorization": header})
        assert wrong.status == 401, header
    right = auth_server.request(method, path, body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status == 200, right.body


def test_probes_and_metrics_need_no_token(auth_server):
    for path in EXEMPT:
        assert auth_server.get(path).status == 200, path


def test_the_token_never_appears_in_the_logs(auth_server):
    auth_server.post("/predict", {"inputs": [ROW]}, headers={"Authorization": f"Bearer {WRONG}"})
    auth_server.post("/predict", {"inputs": [ROW]}, headers={"Authorization": f"Bearer {TOKEN}"})
    auth_server.post("/predict", b"{", headers={"Authorization": f"Bearer {TOKEN}"})
    log = auth_server.log
    assert "auth=bearer token" in log  # says that auth is on ...
    assert TOKEN not in log and WRONG not in log  # ... and never what the token is
    assert TOKEN not in auth_server.metrics()


def test_metrics_count_requests_by_endpoint_and_code(digits_server):
    before = digits_server.metrics()

    def count(text, endpoint, code, method="POST"):
        return metric_value(text, "lmaas_requests_total", 0.0, endpoint=endpoint, method=method, code=code)

    for _ in range(3):
        assert digits_server.post("/v1/models/digits:predict", {"instances": [ROW]}).status == 200
    assert digits_server.post("/v1/models/digits:predict", {"instances": [ROW[:3]]}).status == 400
    assert digits_server.post("/v1/models/nope:predict", {"instances": [ROW]}).status == 404
    assert digits_server.get("/no/such/path").status == 404
    assert digits_server.get("/predict").status == 405
    after = digits_server.metrics()
    endpoint = "/v1/models/{model}:predict"
    assert count(after, endpoint, "200") - count(before, endpoint, "200") == 3
    assert count(after, endpoint, "400") - count(before, endpoint, "400") == 1
    assert count(after, endpoint, "404") - count(before, endpoint, "404") == 1
    assert count(after, "unmatched", "404", "GET") - count(before, "unmatched", "404", "GET") == 1
    assert count(after, "/predict", "405", "GET") - count(before, "/predict", "405", "GET") == 1
    latency = "lmaas_request_duration_seconds_count"
    assert metric_value(after, latency, endpoint=endpoint) - metric_value(before, latency, 0.0, endpoint=endpoint) == 5
    assert metric_value(after, "lmaas_requests_in_flight") == 1  # the scrape itself
    assert metric_value(after, "lmaas_model_ready") == 1
    assert (
        metric_value(
            after,
            "lmaas_model_info",
            model="digits",
            task="classification",
            quantization="none",
            producer="TrainJob/serving-tests",
        )
        == 1
    )
    assert metric_value(after, "lmaas_batch_size_count") >= 3


def test_metrics_are_valid_prometheus_exposition(digits_server):
    parser = pytest.importorskip("prometheus_client.parser")
    reply = digits_server.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parser.text_string_to_metric_families(reply.body.decode())}
    assert families["lmaas_requests"].type == "counter"
    assert families["lmaas_request_duration_seconds"].type == "histogram"
    assert families["lmaas_batch_size"].type == "histogram"
    assert families["lmaas_requests_in_flight"].type == "gauge"
    assert families["lmaas_model_info"].samples[0].labels["model"] == "digits"
