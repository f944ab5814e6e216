"""A ModelService's status, computed from the model's resolution, its Deployment and pods."""

from __future__ import annotations

from typing import Any

from .. import jobs
from ..conditions import phase_conditions
from ..references import Resolution
from .builders import ARTIFACT_ANNOTATION, ARTIFACT_CREATED_ANNOTATION, ModelService, selector, url

CONDITION_TYPES = ("Waiting", "Deploying", "Ready", "Degraded", "Failed")


def compute_status(
    cr: ModelService,
    resolution: Resolution,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    previous: dict[str, Any],
    now: str,
) -> dict[str, Any]:
    phase, reason, message = _phase(cr, resolution, deployment, pods, previous.get("phase") in ("Ready", "Degraded"))
    dep_spec = (deployment or {}).get("spec") or {}
    dep_status = (deployment or {}).get("status") or {}
    status: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": cr.generation,
        "replicas": int(dep_status.get("replicas", 0)),
        "readyReplicas": int(dep_status.get("readyReplicas", 0)),
        "desiredReplicas": int(dep_spec.get("replicas", 0)) if deployment else 0,
        "selector": ",".join(f"{k}={v}" for k, v in sorted(selector(cr).items())),
        "url": url(cr),
    }
    served = _served_model(deployment, resolution)
    if served:
        status["model"] = served
    status["conditions"] = phase_conditions(
        previous.get("conditions"), CONDITION_TYPES, phase, reason, message, cr.generation, now
    )
    return status


def _served_model(deployment: dict[str, Any] | None, resolution: Resolution) -> dict[str, Any] | None:
    """What the pod template serves now (an old artifact stays listed until the rollout is done)."""
    annotations = ((((deployment or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "annotations"
    ) or {}
    if ARTIFACT_ANNOTATION not in annotations:
        return None
    model = {"uri": annotations[ARTIFACT_ANNOTATION]}
    if resolution.producer and resolution.uri == model["uri"]:
        model["producer"] = resolution.producer
    if annotations.get(ARTIFACT_CREATED_ANNOTATION):
        model["createdAt"] = annotations[ARTIFACT_CREATED_ANNOTATION]
    return model


def _phase(
    cr: ModelService,
    resolution: Resolution,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    was_ready: bool,
) -> tuple[str, str, str]:
    """`was_ready`: the service was Ready (or Degraded) before; until then too few ready replicas
    means it is still Deploying (pods warming up), not Degraded."""
    if resolution.state == "failed":
        return "Failed", resolution.reason, resolution.message
    if deployment is None:
        if resolution.state == "waiting":
            return "Waiting", resolution.reason, resolution.message
        return "Deploying", "Creating", "creating the Deployment"
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 0))
    ready = int(status.get("readyReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            problem = jobs.pod_problem(pods)
            return "Failed", "ProgressDeadlineExceeded", problem[1] if problem else condition.get("message", "")
    rolled_out = (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and updated >= desired
        and total == updated
    )
    if not rolled_out:
        problem = jobs.pod_problem(pods)
        if problem:
            return ("Deploying", *problem)
        return "Deploying", "RollingOut", f"{updated}/{desired} replicas updated, {ready} ready"
    if ready >= desired:
        if desired == 0:
            return "Ready", "ScaledToZero", "no replicas requested"
        return "Ready", "Ready", f"{ready}/{desired} replicas ready"
    problem = jobs.pod_problem(pods)
    if not was_ready:
        return ("Deploying", *problem) if problem else ("Deploying", "WarmingUp", f"{ready}/{desired} replicas ready")
    detail = f": {problem[1]}" if problem else ""
    return "Degraded", problem[0] if problem else "ReplicasNotReady", f"{ready}/{desired} replicas ready{detail}"
