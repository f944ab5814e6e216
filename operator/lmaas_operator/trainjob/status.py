"""A TrainJob's status, computed from what exists: its Job, the Job's pods and rank 0's progress.

`compute_status` is pure: the same inputs give the same status, so the handler writes only when
something changed, and a restarted operator computes the very status it had written.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from ..api import contract
from ..conditions import set_conditions
from .builders import CONTAINER, TrainJob

IMAGE_PULL_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_REASONS = {"CreateContainerConfigError", "CreateContainerError"}
CONDITION_TYPES = ("Running", "Suspended", "Succeeded", "Failed")
FINISHED = ("Succeeded", "Failed")


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
        "restarts": int(((job or {}).get("status") or {}).get("failed", 0)),
    }
    progress, checkpoint = _progress(previous.get("progress"), previous.get("latestCheckpoint"), events, output_uri)
    if progress:
        status["progress"] = progress
    if checkpoint:
        status["latestCheckpoint"] = checkpoint
    artifact = previous.get("artifact")
    if phase == "Succeeded":
        artifact = _artifact(pods, output_uri) or artifact or {"uri": f"{output_uri}/{contract.ARTIFACT_SUBDIR}"}
    if artifact:
        status["artifact"] = artifact
    job_status = (job or {}).get("status") or {}
    if job_status.get("startTime"):
        status["startTime"] = job_status["startTime"]
    if phase in FINISHED:
        status["completionTime"] = job_status.get("completionTime") or previous.get("completionTime") or now
    status["conditions"] = set_conditions(
        previous.get("conditions"),
        {kind: (kind == phase, reason if kind == phase else phase, message if kind == phase else "")
         for kind in CONDITION_TYPES},
        cr.generation,
        now,
    )
    return status


def _job_condition(job: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def _phase(cr: TrainJob, job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(phase, reason, message)."""
    if job is None:
        return "Pending", "Creating", "creating the Job"
    if _job_condition(job, "Complete") or _job_condition(job, "SuccessCriteriaMet"):
        return "Succeeded", "Completed", "training finished"
    failed = _job_condition(job, "Failed") or _job_condition(job, "FailureTarget")
    if failed:
        return ("Failed", *_failure(failed, pods))
    if cr.spec.suspend or _job_condition(job, "Suspended"):
        return "Suspended", "Suspended", "spec.suspend is true; resuming continues from the latest checkpoint"
    problem = _pod_problem(pods)
    if problem:
        return ("Pending", *problem)
    low, high = cr.spec.node_range
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    failed_pods = int((job.get("status") or {}).get("failed", 0))
    if len(running) >= low:
        return "Running", "Running", f"{len(running)}/{high} nodes running"
    if failed_pods:
        last = _last_failure(pods)
        detail = f"; last failure: {last}" if last else ""
        return "Restarting", "PodFailed", f"{failed_pods} pod failure(s) so far, {len(running)}/{low} nodes running{detail}"
    return "Pending", "Starting", f"{len(running)}/{low} nodes running"


def _failure(condition: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[str, str]:
    reason = condition.get("reason") or "Failed"
    message = condition.get("message") or ""
    terminated = _terminated_trainers(pods)
    if reason == "PodFailurePolicy" and any(t["exitCode"] == contract.EXIT_CONFIG_ERROR for _, t in terminated):
        pod, state = next((p, t) for p, t in terminated if t["exitCode"] == contract.EXIT_CONFIG_ERROR)
        return "ConfigError", f"the worker rejected its configuration: {_worker_message(state) or message}"
    oom = [(p, t) for p, t in terminated if t.get("reason") == "OOMKilled"]
    if reason == "BackoffLimitExceeded" and oom:
        pod, state = oom[-1]
        return "OOMKilled", (f"pod {pod} was OOMKilled (exit code {state['exitCode']}); "
                             "raise spec.resources.limits.memory or lower the batch size")
    if reason == "BackoffLimitExceeded":
        last = _last_failure(pods)
        return reason, f"the restart budget (spec.maxRestarts) is spent{'; last failure: ' + last if last else ''}"
    return reason, message


def _pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """Why pods are not starting, if a pod says so."""
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False" \
                    and condition.get("reason") == "Unschedulable":
                return "Unschedulable", f"pod {name}: {condition.get('message', 'no node fits')}"
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in IMAGE_PULL_REASONS:
                return "ImagePullBackOff", f"pod {name}: {waiting.get('message') or waiting['reason']}"
            if waiting.get("reason") in CONFIG_REASONS:
                return waiting["reason"], f"pod {name}: {waiting.get('message') or waiting['reason']}"
    return None


def _terminated_trainers(pods: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(pod name, terminated state) of every trainer container that has exited, oldest first."""
    found = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            state = (container.get("state") or {}).get("terminated")
            if container.get("name") == CONTAINER and state:
                found.append((pod["metadata"]["name"], state))
    return sorted(found, key=lambda item: item[1].get("finishedAt") or "")


def _last_failure(pods: list[dict[str, Any]]) -> str:
    failures = [(p, t) for p, t in _terminated_trainers(pods) if t.get("exitCode")]
    if not failures:
        return ""
    pod, state = failures[-1]
    text = f"pod {pod} exited {state['exitCode']}"
    if state.get("reason") and state["reason"] != "Error":
        text += f" ({state['reason']})"
    detail = _worker_message(state)
    return f"{text}: {detail}" if detail else text


def _worker_message(state: dict[str, Any]) -> str:
    """The worker's own words from its termination message (an `error` event), else the raw tail."""
    event = _termination_event(state)
    if event:
        return str(event.get("message") or "")
    return (state.get("message") or "").strip()[-300:]


def _termination_event(state: dict[str, Any]) -> dict[str, Any] | None:
    try:
        event = json.loads(state.get("message") or "")
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") in contract.PROGRESS_EVENTS else None


def _artifact(pods: list[dict[str, Any]], output_uri: str) -> dict[str, Any] | None:
    """From rank 0's `done` event in its termination message."""
    for _, state in reversed(_terminated_trainers(pods)):
        event = _termination_event(state)
        if event and event.get("event") == "done" and event.get("artifact"):
            produced = event["artifact"]
            artifact = {"uri": f"{output_uri}/{produced.get('path', contract.ARTIFACT_SUBDIR)}"}
            if produced.get("sizeBytes") is not None:
                artifact["sizeBytes"] = int(produced["sizeBytes"])
            if produced.get("metrics"):
                artifact["metrics"] = produced["metrics"]
            if event.get("time"):
                artifact["createdAt"] = event["time"]
            return artifact
    return None


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
            for key in ("epoch", "totalEpochs", "step", "totalSteps", "loss", "evalMetric", "evalValue", "samplesPerSecond"):
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
