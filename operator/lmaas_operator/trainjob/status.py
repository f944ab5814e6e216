"""A TrainJob's status, computed from what exists: its Job, the Job's pods and rank 0's progress.

`compute_status` is pure: the same inputs give the same status, so the handler writes only when
something changed, and a restarted operator computes the very status it had written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lmaas_api import contract

from .. import job_status, jobs
from ..conditions import phase_conditions
from .builders import CONTAINER, TrainJob

CONDITION_TYPES = ("Running", "Suspended", "Succeeded", "Failed")
WORK = job_status.Work(
    CONTAINER,
    finished="training finished",
    succeeded="training finished",
    oom_advice="raise spec.resources.limits.memory or lower the batch size",
)


def compute_status(
    cr: TrainJob,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    previous: dict[str, Any],
    output_uri: str,
    now: str,
) -> dict[str, Any]:
    """The whole status. `events` are rank 0's progress lines seen since `previous` was written
    (in order); `now` is an RFC 3339 time, used only for transitions that happen now."""
    low, high = cr.spec.node_range
    phase, reason, message = _phase(cr, job, pods)
    status: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": cr.generation,
        "nodes": f"{low}:{high}" if cr.spec.elastic else str(high),
        **job_status.run_fields(job, phase, previous, now),
    }
    progress, checkpoint = _progress(previous.get("progress"), previous.get("latestCheckpoint"), events, output_uri)
    if progress:
        status["progress"] = progress
    if checkpoint:
        status["latestCheckpoint"] = checkpoint
    artifact = previous.get("artifact")
    if phase == "Succeeded":
        artifact = (
            jobs.artifact_from(jobs.final_event(pods, CONTAINER), output_uri)
            or artifact
            or {"uri": f"{output_uri}/{contract.ARTIFACT_SUBDIR}"}
        )
    if artifact:
        status["artifact"] = artifact
    status["conditions"] = phase_conditions(
        previous.get("conditions"), CONDITION_TYPES, phase, reason, message, cr.generation, now
    )
    return status


def _phase(cr: TrainJob, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(phase, reason, message)."""
    if job is None:
        return "Pending", "Creating", "creating the Job"
    ended = job_status.outcome(job, pods, WORK)
    if ended:
        return ended
    if cr.spec.suspend or jobs.job_condition(job, "Suspended"):
        return "Suspended", "Suspended", "spec.suspend is true; resuming continues from the latest checkpoint"
    problem = jobs.pod_problem(pods)
    if problem:
        return ("Pending", *problem)
    low, high = cr.spec.node_range
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    failed_pods = int((job.get("status") or {}).get("failed", 0))
    if len(running) >= low:
        return "Running", "Running", f"{len(running)}/{high} nodes running"
    if failed_pods:
        last = jobs.last_failure(pods, CONTAINER)
        detail = f"; last failure: {last}" if last else ""
        return (
            "Restarting",
            "PodFailed",
            f"{failed_pods} pod failure(s) so far, {len(running)}/{low} nodes running{detail}",
        )
    return "Pending", "Starting", f"{len(running)}/{low} nodes running"


def _progress(
    progress: dict[str, Any] | None,
    checkpoint: dict[str, Any] | None,
    events: Iterable[dict[str, Any]],
    output_uri: str,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    progress = dict(progress or {})
    for event in events:
        kind = event.get("event")
        if kind in ("progress", "eval", "done", "resume"):
            for key in (
                "epoch",
                "totalEpochs",
                "step",
                "totalSteps",
                "loss",
                "evalMetric",
                "evalValue",
                "samplesPerSecond",
            ):
                if event.get(key) is not None:
                    progress[key] = event[key]
            if event.get("time"):
                progress["updatedAt"] = event["time"]
        if kind in ("checkpoint", "resume") and event.get("checkpoint"):
            saved = event["checkpoint"]
            checkpoint = {"step": saved.get("step"), "uri": f"{output_uri}/{saved.get('path', '')}".rstrip("/")}
            if event.get("time"):
                checkpoint["time"] = event["time"]
    if not progress:
        return None, checkpoint
    progress["summary"] = _summary(progress)
    return progress, checkpoint


def _summary(progress: dict[str, Any]) -> str:
    step, total = progress.get("step"), progress.get("totalSteps")
    if step is None:
        return ""
    if total:
        return f"{step}/{total} ({100 * step // total}%)"
    return str(step)
