"""TrainJob handlers. For now they parse the spec and record observedGeneration; the children and
the computed status arrive with the TrainJob issue."""
from __future__ import annotations

import kopf

from ..api.spec import TrainJobSpec
from .common import GROUP, VERSION, parse_spec, record_observed_generation


@kopf.on.resume(GROUP, VERSION, "trainjobs")
@kopf.on.create(GROUP, VERSION, "trainjobs")
@kopf.on.update(GROUP, VERSION, "trainjobs", field="spec")
def reconcile_trainjob(body: kopf.Body, patch: kopf.Patch, **_) -> None:
    parse_spec(TrainJobSpec, body)
    record_observed_generation(body, patch)
