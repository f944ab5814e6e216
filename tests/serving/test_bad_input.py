"""Every client mistake gets its 4xx and a JSON message naming what is wrong; never a 500."""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = pytest.mark.serving

ROW = [0.5] * 64


def _v2(tensor: dict) -> dict:
    return {"inputs": [tensor]}


@pytest.mark.parametrize(
    "path", ["/predict", "/v1/models/digits:predict", "/v2/models/digits/infer", "/v1/models/digits:explain"]
)
def test_malformed_json_is_400(digits_server, path):
    reply = digits_server.post(path, b'{"inputs": [[0.1, 0.2,')
    assert reply.status == 400 and "not valid JSON" in reply.error
    reply = digits_server.post(path, b"[1, 2, 3]")
    assert reply.status == 400 and "must be a JSON object" in reply.error
    reply = digits_server.post(path, b"")
    assert reply.status == 400 and "empty" in reply.error


@pytest.mark.parametrize(
    "path, body, words",
    [
        ("/predict", {"instances": [ROW]}, ['missing field "inputs"']),
        ("/v1/models/digits:predict", {"inputs": [ROW]}, ['missing field "instances"']),
        ("/predict", {"inputs": [ROW[:63]]}, ["[64]", "[1, 63]"]),
        ("/predict", {"inputs": ROW}, ["list of instances", "[64]"]),
        ("/predict", {"inputs": []}, ["empty"]),
        ("/v1/models/digits:predict", {"instances": [ROW, ROW[:10]]}, ["ragged"]),
        ("/v1/models/digits:predict", {"instances": [["a"] * 64]}, ["must be numbers", "strings"]),
        ("/v1/models/digits:predict", {"instances": [[1e39] * 64]}, ["too large for FP32"]),
    ],
)
def test_wrong_shapes_and_values_name_what_is_wrong(digits_server, path, body, words):
    reply = digits_server.post(path, body)
    assert reply.status == 400, reply.body
    for word in words:
        assert word in reply.error, reply.error


@pytest.mark.parametrize(
    "body, words",
    [
        (_v2({"name": "input", "shape": [1, 63], "datatype": "FP32", "data": ROW[:63]}), ["[1, 63]", "[-1, 64]"]),
        (_v2({"name": "input", "shape": [2, 64], "datatype": "FP32", "data": ROW}), ["64 values", "[2, 64]"]),
        (_v2({"name": "input", "shape": [1, 64], "datatype": "INT64", "data": [1] * 64}), ["INT64", "expects FP32"]),
        (_v2({"name": "input", "shape": [1, 64], "datatype": "BYTES", "data": ["x"] * 64}), ["BYTES", "not supported"]),
        (
            _v2({"name": "input", "shape": [1, 64], "datatype": "FP8", "data": ROW}),
            ["inputs[0].datatype must be", '"FP8"'],
        ),
        (_v2({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [True] * 64}), ["must be numbers"]),
        (
            _v2({"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ROW}),
            ["unknown input 'pixels'", "'input'"],
        ),
        (
            _v2({"name": "input", "shape": [1, -64], "datatype": "FP32", "data": ROW}),
            ["inputs[0].shape[1] must be >= 0", "-64"],
        ),
        (_v2({"name": "input", "shape": [1, 64], "datatype": "FP32"}), ['missing field "data"']),
        (_v2({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": "0.5"}), ["inputs[0].data", "a string"]),
        (_v2({"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.5, None]}), ["inputs[0].data"]),
        ({"inputs": []}, ["inputs must be a non-empty list"]),
        ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}] * 2}, ["takes 1 input"]),
        (
            {
                "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}],
                "outputs": [{"name": "x"}],
            },
            ["unknown output 'x'"],
        ),
        (
            {"id": 7, "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]},
            ["id must be a string"],
        ),
    ],
)
def test_v2_tensor_mistakes_are_400_with_a_message(digits_server, body, words):
    reply = digits_server.post("/v2/models/digits/infer", body)
    assert reply.status == 400, reply.body
    for word in words:
        assert word in reply.error, reply.error


def test_v2_binary_part_that_does_not_fit_is_400(digits_server):
    head = json.dumps(
        _v2({"name": "input", "shape": [1, 64], "datatype": "FP32", "parameters": {"binary_data_size": 256}})
    ).encode()
    reply = digits_server.post(
        "/v2/models/digits/infer", head + b"\0" * 100, headers={"Inference-Header-Content-Length": str(len(head))}
    )
    assert reply.status == 400 and "binary_data_size" in reply.error


@pytest.mark.parametrize("value", ["abc", "0", "100000"])
def test_v2_binary_header_that_does_not_fit_the_body_is_400(digits_server, value):
    reply = digits_server.post(
        "/v2/models/digits/infer",
        _v2({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}),
        headers={"Inference-Header-Content-Length": value},
    )
    assert reply.status == 400 and "Inference-Header-Content-Length" in reply.error, reply.body


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/models/mnist:predict"),
        ("POST", "/v2/models/mnist/infer"),
        ("GET", "/v2/models/mnist"),
        ("GET", "/v2/models/mnist/ready"),
        ("GET", "/v1/models/mnist"),
        ("POST", "/v1/models/mnist:explain"),
    ],
)
def test_unknown_model_is_404_naming_the_served_one(digits_server, method, path):
    reply = digits_server.request(method, path, {"instances": [ROW]} if method == "POST" else None)
    assert reply.status == 404
    assert "'mnist' not found" in reply.error and "'digits'" in reply.error


def test_unknown_route_is_404_and_wrong_method_405(digits_server):
    reply = digits_server.get("/v3/whatever")
    assert reply.status == 404 and "no endpoint" in reply.error
    reply = digits_server.get("/predict")
    assert reply.status == 405 and reply.headers["allow"] == "POST" and "GET is not allowed" in reply.error
    reply = digits_server.request("DELETE", "/v2/health/live")
    assert reply.status == 405 and reply.headers["allow"] == "GET"
    reply = digits_server.request("PUT", "/v2/models/digits/infer", {"inputs": []})
    assert reply.status == 405 and reply.headers["allow"] == "POST"


def _raw_exchange(port: int, head: bytes, chunks: list[bytes]) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        for chunk in chunks:
            connection.sendall(chunk)
        return _read_reply(connection)


def _read_reply(connection: socket.socket, received: bytes = b"") -> tuple[int, dict]:
    while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
        data = connection.recv(65536)
        if not data:
            break
        received += data
    status = int(received.split(b" ", 2)[1])
    return status, json.loads(received.split(b"\r\n\r\n", 1)[1])


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def test_oversized_body_is_413_before_it_is_read(digits_server):
    declared = 9 * 1024 * 1024
    head = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    status, body = _raw_exchange(digits_server.port, head, [b'{"inputs": '])
    assert status == 413 and "limit is 8388608 bytes" in body["error"]


def test_expect_100_continue_is_answered_only_for_a_body_the_server_will_read(digits_server):
    body = json.dumps({"inputs": [ROW]}).encode()
    for length, expected in ((len(body), 200), (9 * 1024 * 1024, 413)):
        head = (
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", digits_server.port), timeout=30) as connection:
            connection.sendall(head)
            first = connection.recv(65536)
            if expected == 413:  # refused from the headers alone: the client is never asked for the body
                assert _read_reply(connection, first)[0] == 413 and b"100 Continue" not in first
                continue
            assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
            connection.sendall(body)
            status, reply = _read_reply(connection, first.split(b"\r\n\r\n", 1)[1])
            assert status == 200 and len(reply["predictions"]) == 1


def test_oversized_chunked_body_is_413(digits_server):
    head = (
        b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"0" * (1024 * 1024)
    chunks = [b"%x\r\n" % len(piece) + piece + b"\r\n"] * 8 + [b"1\r\n0\r\n", b"0\r\n\r\n"]
    status, body = _raw_exchange(digits_server.port, head, chunks)
    assert status == 413 and "exceeds the limit" in body["error"]


@pytest.mark.parametrize(
    "options, word",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 10_000}, "steps"),
        ({"method": "shap"}, "method"),
        ({"target": 10}, "target"),
        ({"target": [1, 2]}, "target"),
        ({"baseline": [0.0] * 3}, "baseline"),
        ({"steps": "64"}, "steps must be an integer"),
        ({"target": "3"}, "target must be a class index"),
    ],
)
def test_explain_options_are_checked(digits_server, options, word):
    reply = digits_server.post("/v1/models/digits:explain", {"instances": [ROW], **options})
    assert reply.status == 400 and word in reply.error, reply.body


@pytest.mark.parametrize(
    "instances, words",
    [
        (["To be \u00e9"], ["'\u00e9'", "vocabulary"]),
        (["x" * 17], ["17 tokens", "context of 16"]),
        ([[0, 1, 9999]], ["token id 9999", "vocabulary"]),
        ([""], ["at least one token"]),
        ("To be", ["instances must be a list", '"To be"']),
    ],
)
def test_language_model_input_mistakes(lm_server, instances, words):
    reply = lm_server.post("/v1/models/chars:predict", {"instances": instances})
    assert reply.status == 400, reply.body
    for word in words:
        assert word in reply.error, reply.error


def test_language_model_v2_datatype_and_length(lm_server):
    reply = lm_server.post(
        "/v2/models/chars/infer",
        _v2({"name": "input_ids", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}),
    )
    assert reply.status == 400 and "expects INT64" in reply.error
    reply = lm_server.post(
        "/v2/models/chars/infer", _v2({"name": "input_ids", "shape": [1, 3], "datatype": "INT64", "data": [1.5, 2, 3]})
    )
    assert reply.status == 400 and "must be integers" in reply.error
