"""A CompressJob's status, computed from its input's resolution, its Job, the pod and the worker's
progress lines and final summary. Pure, like every status here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import job_status, jobs
from ..conditions import phase_conditions
from ..references import Resolution
from .builders import CONTAINER, CompressJob

CONDITION_TYPES = ("Waiting", "Running", "Succeeded", "Failed")
REPORT_KEYS = (
    "sizeRatio",
    "accuracyDelta",
    "perplexityRatio",
    "latencySpeedup",
    "latencySpeedupRange",
    "latencyVerdict",
    "steps",
)
WORK = job_status.Work(
    CONTAINER,
    finished="compression finished",
    succeeded="every step met the quality bound",
    oom_advice="raise spec.resources.limits.memory",
)


def compute_status(
    cr: CompressJob,
    resolution: Resolution,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    previous: dict[str, Any],
    output_uri: str,
    now: str,
) -> dict[str, Any]:
    phase, reason, message = _phase(resolution, job, pods)
    status: dict[str, Any] = {
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": cr.generation,
        **job_status.run_fields(job, phase, previous, now),
    }
    # The input is fixed when the Job starts; a newer artifact from the producer does not change it.
    if previous.get("input"):
        status["input"] = previous["input"]
    elif resolution.state == "ready":
        status["input"] = {"uri": resolution.uri, **({"producer": resolution.producer} if resolution.producer else {})}
    status["progress"] = _progress(cr, previous.get("progress"), events, phase)
    final = jobs.final_event(pods, CONTAINER)
    report = _report(final) or previous.get("report")
    if report:
        status["report"] = report
    artifact = jobs.artifact_from(final, output_uri) if phase == "Succeeded" else None
    artifact = artifact or previous.get("artifact")
    if artifact:
        status["artifact"] = artifact
    status["conditions"] = phase_conditions(
        previous.get("conditions"), CONDITION_TYPES, phase, reason, message, cr.generation, now
    )
    return status


def _phase(resolution: Resolution, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> tuple[str, str, str]:
    if job is None:
        if resolution.state == "failed":
            return "Failed", resolution.reason, resolution.message
        if resolution.state == "waiting":
            return "Waiting", resolution.reason, resolution.message
        return "Pending", "Creating", "creating the Job"
    ended = job_status.outcome(job, pods, WORK)
    if ended:
        return ended
    problem = jobs.pod_problem(pods)
    if problem:
        return ("Pending", *problem)
    if any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        return "Running", "Running", "compressing"
    if int((job.get("status") or {}).get("failed", 0)):
        return "Pending", "Restarting", f"retrying after: {jobs.last_failure(pods, CONTAINER)}"
    return "Pending", "Starting", "waiting for the pod to start"


def _progress(
    cr: CompressJob, previous: dict[str, Any] | None, events: Iterable[dict[str, Any]], phase: str
) -> dict[str, Any]:
    """Steps done; the worker reports `progress` events with step = steps completed and message =
    the step running now."""
    total = len(cr.spec.steps)
    progress = {"completedSteps": 0, "totalSteps": total, **(previous or {})}
    for event in events:
        if event.get("event") in ("progress", "done") and event.get("step") is not None:
            progress["completedSteps"] = int(event["step"])
            progress["currentStep"] = event.get("message") or ""
    if phase == "Succeeded":
        progress["completedSteps"], progress["currentStep"] = total, ""
    current = progress.get("currentStep")
    progress["summary"] = f"{progress['completedSteps']}/{total}" + (f" {current}" if current else "")
    return progress


def _report(event: dict[str, Any] | None) -> dict[str, Any] | None:
    """The report summary the worker puts in its final event (also when a bound was broken)."""
    metrics = ((event or {}).get("artifact") or {}).get("metrics") or {}
    report = {k: metrics[k] for k in REPORT_KEYS if k in metrics}
    return report or None
