"""All three dialects give the answers of the model called in Python, over real HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmaas_worker.data import digits

from . import artifacts

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return digits.load(seed=0).val.tensors[0][:12].numpy()


@pytest.fixture(scope="module")
def expected(digits_dir, samples):
    module, _ = artifacts.loaded(digits_dir)
    with torch.no_grad():
        logits = module(torch.from_numpy(samples))
    return logits.argmax(1).numpy(), torch.softmax(logits, 1).numpy()


def test_the_three_dialects_agree_with_the_model_in_python(digits_server, samples, expected):
    classes, probabilities = expected
    assert len(set(classes.tolist())) > 3, "a model that always says the same class would prove nothing"
    seed = digits_server.post("/predict", {"inputs": samples.tolist()})
    assert seed.status == 200, seed.body
    assert seed.json["predictions"] == classes.tolist()
    np.testing.assert_allclose(seed.json["probabilities"], probabilities, rtol=1e-4, atol=1e-6)

    v1 = digits_server.post("/v1/models/digits:predict", {"instances": samples.tolist()})
    assert v1.status == 200, v1.body
    assert v1.json == {"predictions": classes.tolist()}

    v2 = digits_server.post(
        "/v2/models/digits/infer",
        {
            "id": "req-7",
            "inputs": [
                {
                    "name": "input",
                    "shape": list(samples.shape),
                    "datatype": "FP32",
                    "data": samples.reshape(-1).tolist(),
                }
            ],
        },
    )
    assert v2.status == 200, v2.body
    body = v2.json
    assert body["model_name"] == "digits" and body["id"] == "req-7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["class"]["datatype"] == "INT64" and outputs["class"]["shape"] == [12]
    assert outputs["class"]["data"] == classes.tolist()
    assert outputs["probabilities"]["datatype"] == "FP32" and outputs["probabilities"]["shape"] == [12, 10]
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (12, 10)), probabilities, rtol=1e-4, atol=1e-6
    )


def test_v2_takes_nested_data_fp64_and_a_choice_of_outputs(digits_server, samples, expected):
    classes, _ = expected
    reply = digits_server.post(
        "/v2/models/digits/infer",
        {
            "inputs": [{"name": "input", "shape": [3, 64], "datatype": "FP64", "data": samples[:3].tolist()}],
            "outputs": [{"name": "class"}],
        },
    )
    assert reply.status == 200, reply.body
    assert [o["name"] for o in reply.json["outputs"]] == ["class"]
    assert reply.json["outputs"][0]["data"] == classes[:3].tolist()


def test_v2_binary_tensor_extension_both_ways(digits_server, samples, expected):
    classes, probabilities = expected
    header = {
        "inputs": [
            {"name": "input", "shape": [4, 64], "datatype": "FP32", "parameters": {"binary_data_size": 4 * 64 * 4}}
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "class"}],
    }
    head = json.dumps(header).encode()
    reply = digits_server.post(
        "/v2/models/digits/infer",
        head + samples[:4].astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert reply.status == 200, reply.body
    length = int(reply.headers["inference-header-content-length"])
    document = json.loads(reply.body[:length])
    binary_output, json_output = document["outputs"]
    assert binary_output["parameters"]["binary_data_size"] == 4 * 10 * 4
    values = np.frombuffer(reply.body[length:], dtype="<f4").reshape(4, 10)
    np.testing.assert_allclose(values, probabilities[:4], rtol=1e-4, atol=1e-6)
    assert json_output["data"] == classes[:4].tolist()


def test_v1_and_v2_metadata_and_readiness(digits_server):
    assert digits_server.get("/v1/models/digits").json == {"name": "digits", "ready": True}
    assert digits_server.get("/v1/models").json == {"models": ["digits"]}
    assert digits_server.get("/v2/health/live").json == {"live": True}
    assert digits_server.get("/v2/models/digits/ready").status == 200
    server = digits_server.get("/v2").json
    assert server["name"] == "lmaas" and "binary_tensor_data" in server["extensions"]
    metadata = digits_server.get("/v2/models/digits").json
    assert metadata["name"] == "digits" and metadata["platform"] == "pytorch_torch"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "class", "datatype": "INT64", "shape": [-1]},
    ]


def test_explain_gives_integrated_gradients_that_add_up(digits_server, samples, expected):
    classes, _ = expected
    reply = digits_server.post("/v1/models/digits:explain", {"instances": samples[:2].tolist(), "steps": 128})
    assert reply.status == 200, reply.body
    body = reply.json
    assert body["method"] == "integrated_gradients" and body["output"] == "logit"
    for explanation, cls in zip(body["explanations"], classes[:2]):
        assert explanation["target"] == cls
        attributions = np.array(explanation["attributions"])
        assert attributions.shape == (64,)
        gap = explanation["score"] - explanation["baseline_score"]
        assert abs(attributions.sum() - gap) <= 0.02 * abs(gap) + 1e-3
    other = digits_server.post(
        "/v1/models/digits:explain", {"instances": samples[:1].tolist(), "target": 3, "method": "gradient_x_input"}
    )
    assert other.status == 200 and other.json["explanations"][0]["target"] == 3


def test_the_language_model_in_all_three_dialects(lm_server, lm_dir):
    module, card = artifacts.loaded(lm_dir)
    vocab = card.vocab
    texts = ["To be, or not", "Shall I compare"]
    ids = [[vocab.index(c) for c in t] for t in texts]
    with torch.no_grad():
        expected = [int(module(torch.tensor([row]))[0, -1].argmax()) for row in ids]
    seed = lm_server.post("/predict", {"inputs": texts})
    assert seed.status == 200, seed.body
    assert seed.json == {"predictions": [vocab[i] for i in expected], "next_token_ids": expected}
    v1 = lm_server.post("/v1/models/chars:predict", {"instances": [ids[0], texts[1]]})
    assert v1.json == {"predictions": [vocab[i] for i in expected]}
    v2 = lm_server.post(
        "/v2/models/chars/infer",
        {"inputs": [{"name": "input_ids", "shape": [1, len(ids[1])], "datatype": "INT32", "data": ids[1]}]},
    )
    assert v2.status == 200, v2.body
    outputs = {o["name"]: o for o in v2.json["outputs"]}
    assert outputs["next_token"]["data"] == [expected[1]]
    assert outputs["logits"]["shape"] == [1, len(vocab)]
    explain = lm_server.post("/v1/models/chars:explain", {"instances": texts})
    assert explain.status == 400 and "not supported for language-modeling" in explain.error
