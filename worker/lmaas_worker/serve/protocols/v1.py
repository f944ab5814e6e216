"""KServe's V1 protocol.

    GET  /v1/models                    {"models": [name]}
    GET  /v1/models/<m>                {"name": m, "ready": true} (503 with "ready": false while not ready)
    POST /v1/models/<m>:predict        {"instances": [...]} -> {"predictions": [...]}
    POST /v1/models/<m>:explain        {"instances": [...], "method"?, "steps"?, "target"?, "baseline"?}
                                       -> {"explanations": [{"target", "attributions", "score",
                                           "baseline_score", "delta"}], "method", "output", "steps"}

Instances are those of `/predict` (see `seed`); predictions are class indices for classifiers and
next characters for language models. Explanations are described in `lmaas_worker.serve.explain`.
"""

from __future__ import annotations

from ..dataplane import DataPlane
from . import Call, Reply, join, parse_object, require

_HINT = 'V1 takes {"instances": [instance, ...]}'


class V1Protocol:
    def __init__(self, plane: DataPlane):
        self.plane = plane

    async def list_models(self, call: Call) -> Reply:
        return Reply({"models": [self.plane.model.name]})

    async def model_ready(self, call: Call) -> Reply:
        self.plane.check_name(call.model)
        ready = self.plane.model.ready
        if ready:
            return Reply({"name": call.model, "ready": True})
        return Reply({"name": call.model, "ready": False, "error": f"model is not ready yet ({self.plane.state})"}, 503)

    async def predict(self, call: Call) -> Reply:
        self.plane.check_name(call.model)
        document = parse_object(call.body)
        model = self.plane.model
        rows = model.instances_to_rows(require(document, "instances", _HINT), "instances")
        predictions, _ = model.predictions(join(await self.plane.infer_many(rows)))
        return Reply({"predictions": predictions})

    async def explain(self, call: Call) -> Reply:
        self.plane.check_name(call.model)
        document = parse_object(call.body)
        model = self.plane.model
        rows = model.instances_to_rows(require(document, "instances", _HINT), "instances")
        return Reply(await self.plane.explain(rows, document, "request"))
