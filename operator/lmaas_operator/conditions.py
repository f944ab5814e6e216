"""Standard Kubernetes conditions, computed rather than accumulated."""
from __future__ import annotations

from typing import Any


def set_conditions(
    previous: list[dict[str, Any]] | None,
    wanted: dict[str, tuple[bool, str, str]],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """Conditions for `wanted` {type: (true?, reason, message)}, in the given order.

    lastTransitionTime moves only when a condition's status flips, so an unchanged status
    computes to an identical list and no write happens.
    """
    before = {c["type"]: c for c in previous or []}
    result = []
    for kind, (is_true, reason, message) in wanted.items():
        status = "True" if is_true else "False"
        old = before.get(kind)
        since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
        result.append({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since, "observedGeneration": generation,
        })
    return result
