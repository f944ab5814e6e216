"""ModelService handlers (kinds.register): once the model is ready, a Deployment, a Service and
(when they apply) an autoscaler and a disruption budget; a newer artifact from the producer rolls
the Deployment forward, and children edited by hand are applied again as their owner wants."""

from __future__ import annotations

from typing import Any

from ..config import OperatorConfig
from ..modelservice import builders, status
from ..references import Lookup, Resolution, resolve_model
from .kinds import AUTOSCALER, DEPLOYMENT, DISRUPTION_BUDGET, SERVICE, Kind, Observed, register


def served_model(observed: Observed, producers: Lookup) -> Resolution:
    return resolve_model(observed.cr.spec.model, producers, ("ModelService", observed.cr.name))


def modelservice_status(
    observed: Observed, model: Resolution | None, events: list[dict[str, Any]], config: OperatorConfig, now: str
) -> dict[str, Any]:
    return status.compute_status(observed.cr, model, observed.workload, observed.pods, observed.previous, now)


MODELSERVICE = Kind(
    name="ModelService",
    plural="modelservices",
    workload=DEPLOYMENT,
    children=(SERVICE, DEPLOYMENT, AUTOSCALER, DISRUPTION_BUDGET),
    condition_types=status.CONDITION_TYPES,
    render_children=builders.render_children,
    compute_status=modelservice_status,
    model=served_model,
    unwanted_children=builders.unwanted_children,
    drift=True,
)
reconcile_modelservice, refresh_modelservice_status = register(MODELSERVICE)
