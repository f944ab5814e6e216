"""The seed's API: `POST /predict` with `{"inputs": [instance, ...]}` gives `{"predictions": [...]}`.

Classifiers: instances are arrays of the input shape; predictions are class indices, and
`probabilities` (one list per instance) comes alongside. Character language models: instances
are texts (or lists of token ids); predictions are the most likely next characters, and
`next_token_ids` comes alongside.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from ..dataplane import DataPlane
from ..model import Model
from . import Call, Endpoint, Instance, Reply, RequestBody, join


class PredictRequest(RequestBody):
    inputs: list[Instance] = Field(min_length=1, description="The instances, one prediction each.")

    @classmethod
    def example(cls, model: Model, instances: list[Any]) -> dict[str, Any]:
        return {"inputs": instances}


Predictions = Annotated[
    list[int] | list[str],
    Field(
        description="Per instance, the class index (classifiers) or the most likely next character (language models)."
    ),
]


class PredictResponse(TypedDict):
    predictions: Predictions
    probabilities: NotRequired[
        Annotated[
            list[list[float | None]],
            Field(description="Classifiers: per instance, the softmax of the logits (null where not finite)."),
        ]
    ]
    next_token_ids: NotRequired[
        Annotated[list[int], Field(description="Language models: per instance, the next token's id.")]
    ]


class SeedProtocol:
    def __init__(self, plane: DataPlane):
        self.plane = plane

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "POST",
                "/predict",
                self.predict,
                "The seed's predict: inputs in, predictions out",
                PredictResponse,
                PredictRequest,
                answers_not_ready=True,
                inference=True,
            )
        ]

    async def predict(self, call: Call) -> Reply:
        model = self.plane.model
        rows = model.instances_to_rows(call.body.inputs, "inputs")
        outputs = join(await self.plane.infer_many(rows))
        predictions, extra = model.predictions(outputs)
        return Reply({"predictions": predictions, **extra})
