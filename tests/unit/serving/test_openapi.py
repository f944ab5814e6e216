"""The OpenAPI document against the routes the server really has and the bodies it really accepts."""

from __future__ import annotations

import re

import orjson
import pytest
from openapi_spec_validator import validate

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_worker.serve.auth import BearerAuth
from lmaas_worker.serve.dataplane import DataPlane
from lmaas_worker.serve.http import Frontend
from lmaas_worker.serve.metrics import Metrics
from lmaas_worker.serve.model import ClassifierModel, LanguageModel
from lmaas_worker.serve.protocols import parse


def _classifier() -> ClassifierModel:
    card = ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "model": {"builtin": "mlp"},
            "task": "classification",
            "input": {"shape": [64]},
            "numClasses": 10,
            "producer": {"name": "p"},
        }
    )
    return ClassifierModel("digits", "/m", card)


def _language_model() -> LanguageModel:
    card = ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "task": "language-modeling",
            "input": {"shape": [16]},
            "vocab": list("\n !',-.?abc[]\\^"),
            "model": {"builtin": "char-gpt", "args": {"context": 16}},
        }
    )
    return LanguageModel("chars", "/m", card)


@pytest.fixture(params=[_classifier, _language_model], ids=["classifier", "language-model"])
def model(request):
    return request.param()


def _frontend(model, auth: bool) -> Frontend:
    plane = DataPlane(model, Metrics(), 4, 1.0, threads=1)
    plane.executor.shutdown()
    return Frontend(plane, Metrics(), BearerAuth("token" if auth else None), 1024)


@pytest.mark.parametrize("auth", [False, True])
def test_the_openapi_document_is_valid_and_covers_every_route(model, auth):
    frontend = _frontend(model, auth)
    document = orjson.loads(frontend.openapi)
    validate(document)
    routes = {(route.resource.canonical, route.method.lower()) for route in frontend.router.routes()}
    assert {(path, method) for path, operations in document["paths"].items() for method in operations} == routes
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = path in (
                "/v2/health/live",
                "/v2/health/ready",
                "/metrics",
                "/v1/models/{model}",
                "/v2/models/{model}/ready",
            )
            assert ("401" in operation["responses"]) == (auth and not public), (path, method)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"])
            if "{model}" in path:
                assert "404" in operation["responses"]
                assert operation["parameters"][0]["schema"]["enum"] == [model.name]


def test_every_request_example_is_a_body_the_server_accepts(model):
    frontend = _frontend(model, auth=False)
    document = orjson.loads(frontend.openapi)
    checked = 0
    for path, endpoint in frontend.routes:
        if endpoint.request is None:
            continue
        example = document["paths"][path][endpoint.method.lower()]["requestBody"]["content"]["application/json"][
            "example"
        ]
        body = parse(endpoint.request, orjson.dumps(example))
        instances = body.inputs if path == "/predict" else getattr(body, "instances", None)
        if instances is not None:
            assert len(model.instances_to_rows(instances, "instances")) == 1
        checked += 1
    assert checked == 4


def test_an_instance_is_the_served_models():
    document = orjson.loads(_frontend(_language_model(), auth=False).openapi)
    text, ids = document["components"]["schemas"]["Instance"]["anyOf"]
    assert re.fullmatch(text["pattern"], "abc ?!\n") and not re.fullmatch(text["pattern"], "xyz")
    assert text["maxLength"] == 16 and ids["maxItems"] == 16 and ids["items"]["maximum"] == 14
    document = orjson.loads(_frontend(_classifier(), auth=False).openapi)
    instance = document["components"]["schemas"]["Instance"]
    assert instance["type"] == "array" and instance["minItems"] == instance["maxItems"] == 64
    request = document["components"]["schemas"]["V1PredictRequest"]
    assert request["properties"]["instances"]["items"] == {"$ref": "#/components/schemas/Instance"}
