"""Request bodies are validated by their pydantic models into 400s that name the field; response
bodies are written as JSON without NaN."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from lmaas_worker.serve.errors import ClientError
from lmaas_worker.serve.protocols import json_bytes, parse
from lmaas_worker.serve.protocols.seed import PredictRequest, PredictResponse
from lmaas_worker.serve.protocols.v1 import ExplainRequest
from lmaas_worker.serve.protocols.v2 import InferRequest, InferResponse, ResponseOutput

TENSOR = {"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 1.5]}


def refused(model, body) -> str:
    with pytest.raises(ClientError) as caught:
        parse(model, body if isinstance(body, bytes) else orjson.dumps(body))
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", ["empty"]),
        (b'{"inputs": [[0.1,', ["not valid JSON"]),
        (b'{"inputs": [NaN]}', ["not valid JSON"]),
        (b"\xff", ["not valid JSON"]),
        (b"[1, 2]", ["must be a JSON object", "list"]),
    ],
)
def test_what_is_not_a_json_object_is_refused(body, words):
    message = refused(PredictRequest, body)
    assert all(word in message for word in words), message


@pytest.mark.parametrize(
    "model, body, message",
    [
        (PredictRequest, {"instances": [[1]]}, 'missing field "inputs"'),
        (PredictRequest, {"inputs": []}, "inputs must be a non-empty list, got []"),
        (InferRequest, {"inputs": [{"name": "input", "datatype": "FP32"}]}, 'inputs[0]: missing field "shape"'),
        (InferRequest, {"id": 7, "inputs": [TENSOR]}, "id must be a string, got 7"),
        (InferRequest, {"inputs": [{**TENSOR, "shape": [2, -1]}]}, "inputs[0].shape[1] must be >= 0, got -1"),
        (InferRequest, {"inputs": [{**TENSOR, "shape": [2.0, 3]}]}, "inputs[0].shape[0] must be an integer, got 2.0"),
        (InferRequest, {"inputs": [{**TENSOR, "shape": [True]}]}, "inputs[0].shape[0] must be an integer, got true"),
        (InferRequest, {"inputs": [{**TENSOR, "shape": "2x3"}]}, 'inputs[0].shape must be a list, got "2x3"'),
        (InferRequest, {"inputs": [{**TENSOR, "shape": None}]}, "inputs[0].shape must be a list, got null"),
        (InferRequest, {"inputs": [{**TENSOR, "datatype": "fp32"}]}, "inputs[0].datatype must be 'BOOL', "),
        (
            InferRequest,
            {"inputs": [{**TENSOR, "parameters": {"binary_data_size": "8"}}]},
            'inputs[0].parameters.binary_data_size must be an integer, got "8"',
        ),
        (
            InferRequest,
            {"inputs": [TENSOR], "outputs": [{"name": "class", "parameters": {"binary_data": 1}}]},
            "outputs[0].parameters.binary_data must be true or false, got 1",
        ),
        (InferRequest, {"inputs": [TENSOR], "parameters": []}, "parameters must be an object, got []"),
        (ExplainRequest, {"instances": [[0]], "steps": 0}, "steps must be >= 1, got 0"),
        (ExplainRequest, {"instances": [[0]], "steps": 513}, "steps must be <= 512, got 513"),
        (ExplainRequest, {"instances": [[0]], "steps": True}, "steps must be an integer, got true"),
        (ExplainRequest, {"instances": [[0]] * 65}, "instances must have at most 64 items"),
        (
            ExplainRequest,
            {"instances": [[0]], "method": "shap"},
            "method must be 'integrated_gradients' or 'gradient_x_input', got \"shap\"",
        ),
        (ExplainRequest, {"instances": [[0]], "target": [1, "2"]}, "target must be a class index or a list of them"),
    ],
)
def test_a_bad_body_names_the_field(model, body, message):
    assert message in refused(model, body)


def test_valid_bodies_keep_their_values():
    request = parse(
        InferRequest, orjson.dumps({"id": "r", "inputs": [{**TENSOR, "extra": 1}], "outputs": [{"name": "class"}]})
    )
    assert request.id == "r" and request.inputs[0].data == [0.5, 1.5] and request.inputs[0].shape == [1, 2]
    explain = parse(ExplainRequest, b'{"instances": [[0, 1]], "target": 3, "baseline": 0}')
    assert explain.model_dump(exclude={"instances"}) == {
        "method": "integrated_gradients",
        "steps": 64,
        "target": 3,
        "baseline": 0.0,
    }


def test_responses_take_numpy_arrays_and_write_non_finite_floats_as_null():
    body = PredictResponse(
        predictions=np.array([3, 1]), probabilities=np.array([[math.nan, 1.0], [math.inf, 0.5]], dtype=np.float32)
    )
    assert orjson.loads(json_bytes(body)) == {"predictions": [3, 1], "probabilities": [[None, 1.0], [None, 0.5]]}
    strided = np.array([[1.0, math.nan], [2.0, 3.0]], dtype=np.float32).T  # not C-contiguous: orjson's fallback
    assert orjson.loads(json_bytes({"rows": strided, "score": np.float32("nan"), "class": np.int64(4)})) == {
        "rows": [[1.0, 2.0], [None, 3.0]],
        "score": None,
        "class": 4,
    }
    infer = InferResponse(
        model_name="m",
        model_version="1",
        outputs=[
            ResponseOutput(name="class", datatype="INT64", shape=[2], data=np.array([7, 8])),
            ResponseOutput(name="probabilities", datatype="FP32", shape=[1], parameters={"binary_data_size": 4}),
        ],
    )
    assert b'"data":[7,8]' in json_bytes(infer)  # integers stay integers
    assert orjson.loads(json_bytes(infer)) == {
        "model_name": "m",
        "model_version": "1",
        "outputs": [
            {"name": "class", "datatype": "INT64", "shape": [2], "data": [7, 8]},
            {"name": "probabilities", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}},
        ],
    }
