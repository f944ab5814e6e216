"""TrainJob handlers (kinds.register): the children, a headless Service and an Indexed Job,
follow the spec; the status comes from the Job and pod indexes and rank 0's progress lines."""

from __future__ import annotations

from typing import Any

from .. import pods
from ..config import OperatorConfig
from ..references import Resolution
from ..trainjob import builders, status
from .kinds import JOB, SERVICE, Kind, Observed, register


def trainjob_status(
    observed: Observed, model: Resolution | None, events: list[dict[str, Any]], config: OperatorConfig, now: str
) -> dict[str, Any]:
    return status.compute_status(
        observed.cr,
        observed.workload,
        observed.pods,
        events,
        observed.previous,
        pods.output_uri(observed.cr, config.artifact_claim),
        now,
    )


TRAINJOB = Kind(
    name="TrainJob",
    plural="trainjobs",
    workload=JOB,
    children=(SERVICE, JOB),
    condition_types=status.CONDITION_TYPES,
    render_children=builders.render_children,
    compute_status=trainjob_status,
    progress_container=builders.CONTAINER,
)
reconcile_trainjob, refresh_trainjob_status = register(TRAINJOB)
