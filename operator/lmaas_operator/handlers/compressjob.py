"""CompressJob handlers (kinds.register): the Job is applied once the input model is ready, and
follows the spec's deadline and restarts while it runs; the status comes from the input, the Job
and pod indexes and the worker's progress lines."""

from __future__ import annotations

from typing import Any

from .. import pods
from ..compressjob import builders, status
from ..config import OperatorConfig
from ..references import Lookup, Resolution, resolve_model
from .kinds import JOB, Kind, Observed, register


def input_model(observed: Observed, producers: Lookup) -> Resolution:
    """The model to compress: the input the status recorded once it was chosen (a newer artifact of
    the producer does not change a CompressJob that started), else its producer's artifact now. A
    chosen input is its URI alone: a new creation time of the same artifact changes nothing here."""
    chosen = observed.previous.get("input")
    if not chosen:
        resolution = resolve_model(observed.cr.spec.model, producers, ("CompressJob", observed.cr.name))
        if resolution.state != "ready":
            return resolution
        chosen = {"uri": resolution.uri, **({"producer": resolution.producer} if resolution.producer else {})}
    return Resolution(
        "ready", "InputChosen", f"compressing {chosen['uri']}", uri=chosen["uri"], producer=chosen.get("producer")
    )


def compressjob_status(
    observed: Observed, model: Resolution | None, events: list[dict[str, Any]], config: OperatorConfig, now: str
) -> dict[str, Any]:
    return status.compute_status(
        observed.cr,
        model,
        observed.workload,
        observed.pods,
        events,
        observed.previous,
        pods.output_uri(observed.cr, config.artifact_claim),
        now,
    )


COMPRESSJOB = Kind(
    name="CompressJob",
    plural="compressjobs",
    workload=JOB,
    children=(JOB,),
    condition_types=status.CONDITION_TYPES,
    render_children=builders.render_children,
    compute_status=compressjob_status,
    model=input_model,
    progress_container=builders.CONTAINER,
)
reconcile_compressjob, refresh_compressjob_status = register(COMPRESSJOB)
