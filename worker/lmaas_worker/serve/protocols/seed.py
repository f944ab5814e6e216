"""The seed's API: `POST /predict` with `{"inputs": [instance, ...]}` gives `{"predictions": [...]}`.

Classifiers: instances are arrays of the input shape; predictions are class indices, and
`probabilities` (one list per instance) comes alongside. Character language models: instances
are texts (or lists of token ids); predictions are the most likely next characters, and
`next_token_ids` comes alongside.
"""

from __future__ import annotations

from ..dataplane import DataPlane
from . import Call, Reply, join, parse_object, require


class SeedProtocol:
    def __init__(self, plane: DataPlane):
        self.plane = plane

    async def predict(self, call: Call) -> Reply:
        document = parse_object(call.body)
        model = self.plane.model
        instances = require(document, "inputs", 'the seed\'s /predict takes {"inputs": [instance, ...]}')
        rows = model.instances_to_rows(instances, "inputs")
        outputs = join(await self.plane.infer_many(rows))
        predictions, extra = model.predictions(outputs)
        return Reply({"predictions": predictions, **extra})
