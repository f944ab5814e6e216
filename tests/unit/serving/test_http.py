"""The HTTP front's routing: what it remembers of the router's answers stays bounded by the routes."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp.test_utils import make_mocked_request

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_worker.serve.auth import BearerAuth
from lmaas_worker.serve.dataplane import DataPlane
from lmaas_worker.serve.http import Frontend
from lmaas_worker.serve.metrics import Metrics
from lmaas_worker.serve.model import ClassifierModel


def _frontend() -> Frontend:
    card = ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "model": {"builtin": "mlp"},
            "task": "classification",
            "input": {"shape": [64]},
            "numClasses": 10,
        }
    )
    plane = DataPlane(ClassifierModel("digits", "/m", card), Metrics(), 4, 1.0, threads=1)
    plane.executor.shutdown()
    return Frontend(plane, plane.metrics, BearerAuth(None), 1024)


def test_paths_of_other_models_are_never_remembered_and_the_served_models_are_routed_alike():
    frontend = _frontend()

    async def answers(method: str, path: str) -> tuple[int, dict]:
        response = await frontend.handle(make_mocked_request(method, path))
        return response.status, orjson.loads(response.body)

    async def scenario() -> None:
        for i in range(100):
            status, body = await answers("GET", f"/v2/models/other-{i}")
            assert status == 404 and f"'other-{i}' not found" in body["error"]
        metadata = orjson.loads(orjson.dumps(frontend.plane.model.metadata()))
        for _ in range(3):  # the first answer comes from the router, the others from what it remembered
            assert await answers("GET", "/v2/models/digits") == (200, metadata)
            status, body = await answers("GET", "/v2/models/digits/ready")
            assert status == 503 and body["ready"] is False
            status, body = await answers("POST", "/v2/models/digits/ready")
            assert status == 405 and "use GET" in body["error"]
        assert len(frontend._routed) == 2

    asyncio.run(scenario())
