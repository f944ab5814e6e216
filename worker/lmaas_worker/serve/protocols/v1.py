"""KServe's V1 protocol.

    GET  /v1/models                    {"models": [name]}
    GET  /v1/models/<m>                {"name": m, "ready": true} (503 with "ready": false while not ready)
    POST /v1/models/<m>:predict        {"instances": [...]} -> {"predictions": [...]}
    POST /v1/models/<m>:explain        {"instances": [...], "method"?, "steps"?, "target"?, "baseline"?}
                                       -> {"explanations": [{"target", "attributions", "score",
                                           "baseline_score", "delta"}], "method", "output", "steps"}

Instances are those of `/predict` (see `seed`); predictions are class indices for classifiers and
next characters for language models. Explanations are described in `lmaas_worker.serve.explain`.
A model name never holds `/` or `:`, so `/v1/models/a:b` is no route.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from ..dataplane import DataPlane
from ..explain import METHODS
from ..model import EXPLAIN_MAX_INSTANCES, EXPLAIN_MAX_STEPS, Model
from . import Call, Endpoint, Instance, ModelReady, Reply, RequestBody, join
from .seed import Predictions


class ModelList(TypedDict):
    models: list[str]


class V1PredictRequest(RequestBody):
    instances: list[Instance] = Field(min_length=1, description="The instances, one prediction each.")

    @classmethod
    def example(cls, model: Model, instances: list[Any]) -> dict[str, Any]:
        return {"instances": instances}


class V1PredictResponse(TypedDict):
    predictions: Predictions


def _class_indices(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:  # pydantic says what each member of the union wanted; one message is clearer
        raise PydanticCustomError("class_indices", "must be a class index or a list of them") from None


ClassIndex = Annotated[int, Field(ge=0)]


class ExplainRequest(RequestBody):
    instances: list[Instance] = Field(
        min_length=1, max_length=EXPLAIN_MAX_INSTANCES, description="The instances to explain."
    )
    method: Literal[METHODS] = "integrated_gradients"
    steps: int = Field(64, ge=1, le=EXPLAIN_MAX_STEPS, description="Integration steps of integrated gradients.")
    target: Annotated[ClassIndex | list[ClassIndex], WrapValidator(_class_indices)] | None = Field(
        None, description="The class to explain, per instance or for all; default: the predicted one."
    )
    baseline: float | Instance | None = Field(
        None, description="The reference input of integrated gradients, a number or an instance; default: zeros."
    )

    @classmethod
    def example(cls, model: Model, instances: list[Any]) -> dict[str, Any]:
        return {"instances": instances, "steps": 32}


class Explanation(TypedDict):
    target: int
    attributions: Annotated[list[Any], Field(description="One number per input feature, in the input's shape.")]
    score: float | None
    baseline_score: float | None
    delta: Annotated[float | None, Field(description="sum(attributions) - (score - baseline_score).")]


class ExplainResponse(TypedDict):
    method: Literal[METHODS]
    output: Literal["logit"]
    steps: int
    explanations: list[Explanation]


class V1Protocol:
    def __init__(self, plane: DataPlane):
        self.plane = plane

    def endpoints(self) -> list[Endpoint]:
        # The router tries the routes under /v1/models in this order: inference first.
        return [
            Endpoint(
                "POST",
                "/v1/models/{model:[^/:]+}:predict",
                self.predict,
                "KServe V1 predict",
                V1PredictResponse,
                V1PredictRequest,
                answers_not_ready=True,
                inference=True,
            ),
            Endpoint(
                "POST",
                "/v1/models/{model:[^/:]+}:explain",
                self.explain,
                "KServe V1 explain: per-feature attributions of the predicted (or given) class",
                ExplainResponse,
                ExplainRequest,
                answers_not_ready=True,
            ),
            Endpoint("GET", "/v1/models", self.list_models, "KServe V1: the served models", ModelList),
            Endpoint(
                "GET",
                "/v1/models/{model:[^/:]+}",
                self.model_ready,
                "KServe V1: is the model ready",
                ModelReady,
                public=True,
                answers_not_ready=True,
            ),
        ]

    async def list_models(self, call: Call) -> Reply:
        return Reply({"models": [self.plane.model.name]})

    async def model_ready(self, call: Call) -> Reply:
        if self.plane.model.ready:
            return Reply({"name": call.model, "ready": True})
        error = f"model is not ready yet ({self.plane.state})"
        return Reply({"name": call.model, "ready": False, "error": error}, 503)

    async def predict(self, call: Call) -> Reply:
        model = self.plane.model
        rows = model.instances_to_rows(call.body.instances, "instances")
        predictions, _ = model.predictions(join(await self.plane.infer_many(rows)))
        return Reply({"predictions": predictions})

    async def explain(self, call: Call) -> Reply:
        request: ExplainRequest = call.body
        rows = self.plane.model.instances_to_rows(request.instances, "instances")
        options = request.model_dump(exclude={"instances"})
        return Reply(await self.plane.explain(rows, options, "request"))
