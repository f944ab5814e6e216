"""A worker Job's outcome in the words of its resource's status: the one rule for when a TrainJob's
or a CompressJob's Job succeeded or failed, and why. Each kind's status adds what is its own while
the Job runs (nodes, suspension, the input); pure, like every status here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmaas_api import contract

from . import jobs

FINISHED = ("Succeeded", "Failed")
"""The phases a resource's status ends in."""


@dataclass(frozen=True)
class Work:
    """What a kind's Job does, as its status tells it."""

    container: str
    """The worker container, whose termination message is the result."""
    finished: str
    """What has happened when the Job completes ("training finished")."""
    succeeded: str
    """The message of a success."""
    oom_advice: str
    """What to change when the worker ran out of memory."""


def outcome(job: dict[str, Any], pods: list[dict[str, Any]], work: Work) -> tuple[str, str, str] | None:
    """(phase, reason, message) of a Job that completed or failed, None while it runs. A complete
    Job whose result (its pod's termination message) is not seen yet is still Running."""
    if jobs.job_condition(job, "Complete") or jobs.job_condition(job, "SuccessCriteriaMet"):
        if jobs.result_pending(pods, work.container):
            return "Running", "Finishing", f"{work.finished}; reading the result"
        return "Succeeded", "Completed", work.succeeded
    failed = jobs.job_condition(job, "Failed") or jobs.job_condition(job, "FailureTarget")
    if failed:
        return ("Failed", *failure(failed, pods, work))
    return None


def failure(condition: dict[str, Any], pods: list[dict[str, Any]], work: Work) -> tuple[str, str]:
    """(reason, message) of a failed Job: the worker's own reason when its exit code failed the Job
    at once (podFailurePolicy), OOMKilled when the restart budget went on running out of memory."""
    reason = condition.get("reason") or "Failed"
    message = condition.get("message") or ""
    terminated = jobs.terminated(pods, work.container)
    if reason == "PodFailurePolicy":
        for _, state in reversed(terminated):
            said = jobs.worker_message(state)
            if state.get("exitCode") == contract.EXIT_CONFIG_ERROR:
                return "ConfigError", f"the worker rejected its configuration: {said or message}"
            if state.get("exitCode") == contract.EXIT_QUALITY_BOUND:
                return "AccuracyBoundExceeded", said or "a step broke the quality bound"
    if reason == "BackoffLimitExceeded":
        oom = [(pod, state) for pod, state in terminated if state.get("reason") == "OOMKilled"]
        if oom:
            pod, state = oom[-1]
            return "OOMKilled", f"pod {pod} was OOMKilled (exit code {state['exitCode']}); {work.oom_advice}"
        last = jobs.last_failure(pods, work.container)
        return reason, "the restart budget (spec.maxRestarts) is spent" + (f"; last failure: {last}" if last else "")
    return reason, message


def run_fields(job: dict[str, Any] | None, phase: str, previous: dict[str, Any], now: str) -> dict[str, Any]:
    """restarts, startTime and completionTime: the Job's, a finished resource keeping the
    completionTime it had (its Job goes ttlSecondsAfterFinished after it), else `now`."""
    job_status = (job or {}).get("status") or {}
    fields: dict[str, Any] = {"restarts": int(job_status.get("failed", 0))}
    if job_status.get("startTime"):
        fields["startTime"] = job_status["startTime"]
    if phase in FINISHED:
        fields["completionTime"] = job_status.get("completionTime") or previous.get("completionTime") or now
    return fields
