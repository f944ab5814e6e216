"""The rules of a handler's status write that hold for every kind: a refused child fails the
resource until its spec changes, and a timer records no generation it did not handle."""

from __future__ import annotations

from typing import Any

import kopf

from lmaas_api.clock import utc_now

from ..conditions import with_phase
from .apply import ChildRejected
from .bodies import plain


def rejected_status(body: kopf.Body, rejected: ChildRejected, condition_types: tuple[str, ...]) -> dict[str, Any]:
    """Failed, with the API server's own words: the resource stays so until its spec changes."""
    previous = plain(body.get("status") or {})
    generation = body["metadata"].get("generation")
    return with_phase(
        {**previous, "observedGeneration": generation},
        previous.get("conditions"),
        condition_types,
        "Failed",
        "ChildRejected",
        str(rejected),
        generation,
        utc_now(),
    )


def still_rejected(body: kopf.Body) -> bool:
    """Whether this generation's children were refused (status recomputation would hide it)."""
    status = body.get("status") or {}
    return status.get("reason") == "ChildRejected" and status.get("observedGeneration") == body["metadata"].get(
        "generation"
    )


def keep_observed_generation(status: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """`status` with the observedGeneration of `previous`: for a timer, since observedGeneration is
    the generation the create, update or resume handler handled, and what tells kopf that a spec
    change is still to be handled (persistence.GenerationDiffBase)."""
    status = {key: value for key, value in status.items() if key != "observedGeneration"}
    if "observedGeneration" in previous:
        status["observedGeneration"] = previous["observedGeneration"]
    return status
