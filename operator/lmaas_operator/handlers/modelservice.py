"""ModelService handlers. For now they parse the spec and record observedGeneration; the children and
the computed status arrive with the ModelService issue."""
from __future__ import annotations

import kopf

from ..api.spec import ModelServiceSpec
from .common import GROUP, VERSION, parse_spec, record_observed_generation


@kopf.on.resume(GROUP, VERSION, "modelservices")
@kopf.on.create(GROUP, VERSION, "modelservices")
@kopf.on.update(GROUP, VERSION, "modelservices", field="spec")
def reconcile_modelservice(body: kopf.Body, patch: kopf.Patch, **_) -> None:
    parse_spec(ModelServiceSpec, body)
    record_observed_generation(body, patch)
