"""CompressJob handlers. For now they parse the spec and record observedGeneration; the children and
the computed status arrive with the CompressJob issue."""
from __future__ import annotations

import kopf

from ..api.spec import CompressJobSpec
from .common import GROUP, VERSION, parse_spec, record_observed_generation


@kopf.on.resume(GROUP, VERSION, "compressjobs")
@kopf.on.create(GROUP, VERSION, "compressjobs")
@kopf.on.update(GROUP, VERSION, "compressjobs", field="spec")
def reconcile_compressjob(body: kopf.Body, patch: kopf.Patch, **_) -> None:
    parse_spec(CompressJobSpec, body)
    record_observed_generation(body, patch)
