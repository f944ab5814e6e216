"""The metrics exposition, and the OpenAPI document against the routes the server really has."""

from __future__ import annotations

import re

import pytest

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_worker.serve.metrics import Metrics
from lmaas_worker.serve.model import ClassifierModel, LanguageModel
from lmaas_worker.serve.openapi import build_openapi


def test_histograms_are_cumulative_and_labels_escaped():
    metrics = Metrics()
    for seconds in (0.0004, 0.003, 0.003, 20.0):
        metrics.observe_request("/predict", "POST", 200, seconds)
    metrics.observe_batch(3, 0.001)
    metrics.observe_batch(40, 0.002)
    metrics.info = {"model": 'we"ird\\name', "task": "classification"}
    text = metrics.render().decode()
    assert 'lmaas_requests_total{endpoint="/predict",method="POST",code="200"} 4' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="0.0005"} 1' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="0.005"} 3' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="10"} 3' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"} 4' in text
    assert 'lmaas_batch_size_bucket{le="2"} 0' in text and 'lmaas_batch_size_bucket{le="4"} 1' in text
    assert 'lmaas_batch_size_bucket{le="64"} 2' in text and "lmaas_batch_size_sum 43" in text
    assert "lmaas_inference_rows_total 43" in text
    assert 'model="we\\"ird\\\\name"' in text
    parser = pytest.importorskip("prometheus_client.parser")
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert families["lmaas_model_info"].samples[0].labels["model"] == 'we"ird\\name'


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


def _frontend_templates(model) -> set[str]:
    from lmaas_worker.serve.auth import BearerAuth
    from lmaas_worker.serve.dataplane import DataPlane
    from lmaas_worker.serve.http import Frontend

    plane = DataPlane(model, Metrics(), 4, 1.0, threads=1)
    try:
        routes = Frontend(plane, Metrics(), BearerAuth(None), {}, 1024).routes
    finally:
        plane.executor.shutdown()
    return {template.replace("{model}", "{model_name}") for template in routes}


@pytest.mark.parametrize("model", [_classifier(), _language_model()], ids=["classifier", "language-model"])
@pytest.mark.parametrize("auth", [False, True])
def test_the_openapi_document_is_valid_and_covers_every_route(model, auth):
    document = build_openapi(model, auth, "1.0", 1024)
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
    assert set(document["paths"]) == _frontend_templates(model)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = path in (
                "/v2/health/live",
                "/v2/health/ready",
                "/metrics",
                "/v1/models/{model_name}",
                "/v2/models/{model_name}/ready",
            )
            assert ("401" in operation["responses"]) == (auth and not public), (path, method)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"])
            if "{model_name}" in path:
                assert "404" in operation["responses"]
    if isinstance(model, LanguageModel):
        pattern = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]["inputs"]["items"]["oneOf"][0]["pattern"]
        assert re.fullmatch(pattern, "abc ?!\n") and not re.fullmatch(pattern, "xyz")
