"""Reading a worker Job and its pods: conditions, why pods do not start, how containers ended.

Shared by the status of every kind that runs its worker in a Job.
"""

from __future__ import annotations

import json
from typing import Any

from lmaas_api import contract

IMAGE_PULL_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_REASONS = {"CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff"}


def job_condition(job: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """Why pods are not starting, if a pod says so."""
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                return "Unschedulable", f"pod {name}: {condition.get('message', 'no node fits')}"
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in IMAGE_PULL_REASONS:
                return "ImagePullBackOff", f"pod {name}: {waiting.get('message') or waiting['reason']}"
            if waiting.get("reason") in CONFIG_REASONS:
                return waiting["reason"], f"pod {name}: {waiting.get('message') or waiting['reason']}"
    return None


def terminated(pods: list[dict[str, Any]], container_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(pod name, terminated state) of every `container_name` container that has exited, oldest first."""
    found = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            state = (container.get("state") or {}).get("terminated")
            if container.get("name") == container_name and state:
                found.append((pod["metadata"]["name"], state))
    return sorted(found, key=lambda item: item[1].get("finishedAt") or "")


def last_failure(pods: list[dict[str, Any]], container_name: str) -> str:
    failures = [(p, t) for p, t in terminated(pods, container_name) if t.get("exitCode")]
    if not failures:
        return ""
    pod, state = failures[-1]
    text = f"pod {pod} exited {state['exitCode']}"
    if state.get("reason") and state["reason"] != "Error":
        text += f" ({state['reason']})"
    detail = worker_message(state)
    return f"{text}: {detail}" if detail else text


def worker_message(state: dict[str, Any]) -> str:
    """The worker's own words from its termination message (an `error` event), else the raw tail."""
    event = termination_event(state)
    if event:
        return str(event.get("message") or "")
    return (state.get("message") or "").strip()[-300:]


def termination_event(state: dict[str, Any]) -> dict[str, Any] | None:
    try:
        event = json.loads(state.get("message") or "")
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") in contract.PROGRESS_EVENTS else None


def final_event(pods: list[dict[str, Any]], container_name: str) -> dict[str, Any] | None:
    """The worker's last word: the newest `done` or `error` event among termination messages."""
    for _, state in reversed(terminated(pods, container_name)):
        event = termination_event(state)
        if event and event.get("event") in ("done", "error"):
            return event
    return None


def artifact_from(event: dict[str, Any] | None, output_uri: str) -> dict[str, Any] | None:
    """status.artifact from a `done` event: the worker names its artifact relative to its output."""
    if not event or event.get("event") != "done" or not event.get("artifact"):
        return None
    produced = event["artifact"]
    artifact = {"uri": f"{output_uri}/{produced.get('path', contract.ARTIFACT_SUBDIR)}"}
    if produced.get("sizeBytes") is not None:
        artifact["sizeBytes"] = int(produced["sizeBytes"])
    if produced.get("metrics"):
        artifact["metrics"] = produced["metrics"]
    if event.get("time"):
        artifact["createdAt"] = event["time"]
    return artifact


def result_pending(pods: list[dict[str, Any]], container_name: str) -> bool:
    """The Job says complete but the pod that completed it is not yet seen terminated (the pod and
    Job watches are separate streams): its termination message, the result, is still to come."""
    return bool(pods) and not any(state.get("exitCode") == 0 for _, state in terminated(pods, container_name))
