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
        since = (
            old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
        )
        result.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return result


def phase_conditions(
    previous: list[dict[str, Any]] | None,
    types: tuple[str, ...],
    phase: str,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """One condition per type: True with the phase's reason and message for the current phase,
    False (reason: the current phase) for the others."""
    return set_conditions(
        previous,
        {kind: (kind == phase, reason if kind == phase else phase, message if kind == phase else "") for kind in types},
        generation,
        now,
    )


def with_phase(
    status: dict[str, Any],
    previous_conditions: list[dict[str, Any]] | None,
    types: tuple[str, ...],
    phase: str,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> dict[str, Any]:
    """`status` put in another phase than its status function computed (a refused child, a stopped
    local run): phase, reason and message replaced, conditions recomputed from the previous ones."""
    return {
        **status,
        "phase": phase,
        "reason": reason,
        "message": message,
        "conditions": phase_conditions(previous_conditions, types, phase, reason, message, generation, now),
    }
