"""lmaas_operator.job_status: how a TrainJob's and a CompressJob's Job ended, in one rule for both
kinds (each says what it does and what to change in its own words)."""

import json

import pytest

from lmaas_api import contract
from lmaas_operator.compressjob.status import WORK as COMPRESS
from lmaas_operator.job_status import outcome, run_fields
from lmaas_operator.trainjob.status import WORK as TRAIN

BOTH = pytest.mark.parametrize("work", [TRAIN, COMPRESS], ids=["trainjob", "compressjob"])


def job(kind, reason="", message="", **status):
    return {
        "status": {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}], **status}
    }


def ended(work, code, finished, reason="Error", message="", name="digits-0"):
    state = {"exitCode": code, "reason": reason, "message": message, "finishedAt": finished}
    container = {"name": work.container, "state": {"terminated": state}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [container]}}


def error_line(text):
    line = dict.fromkeys(contract.PROGRESS_KEYS)
    line.update(event="error", time="2026-11-29T10:00:00Z", message=text)
    return json.dumps(line)


@BOTH
def test_a_running_job_has_no_outcome_yet(work):
    assert outcome({"status": {"active": 1}}, [], work) is None


@BOTH
def test_a_complete_job_succeeds_once_its_result_is_seen(work):
    assert outcome(job("Complete"), [], work)[:2] == ("Succeeded", "Completed")
    running = {"metadata": {"name": "digits-0"}, "status": {"phase": "Running"}}
    assert outcome(job("Complete"), [running], work) == ("Running", "Finishing", f"{work.finished}; reading the result")


@BOTH
def test_a_configuration_error_fails_with_the_workers_words_whichever_pod_ended_last(work):
    pods = [
        ended(work, contract.EXIT_CONFIG_ERROR, "2026-11-29T10:00:01Z", message=error_line("spec.model.args: no")),
        ended(work, 143, "2026-11-29T10:00:02Z", name="digits-1"),
    ]  # a peer stopped after it
    failed = job("Failed", "PodFailurePolicy", "Container failed with exit code 78")
    assert outcome(failed, pods, work) == (
        "Failed",
        "ConfigError",
        "the worker rejected its configuration: spec.model.args: no",
    )


@BOTH
def test_a_broken_quality_bound_fails_with_the_workers_words(work):
    said = error_line("step 1 (prune): -5.3 points")
    pods = [ended(work, contract.EXIT_QUALITY_BOUND, "2026-11-29T10:00:01Z", message=said)]
    assert outcome(job("Failed", "PodFailurePolicy"), pods, work) == (
        "Failed",
        "AccuracyBoundExceeded",
        "step 1 (prune): -5.3 points",
    )


@BOTH
def test_running_out_of_memory_past_the_budget_names_the_pod_and_what_to_change(work):
    pods = [ended(work, 137, f"2026-11-29T10:00:0{i}Z", "OOMKilled", name=f"digits-{i}") for i in range(3)]
    reason, message = outcome(job("Failed", "BackoffLimitExceeded"), pods, work)[1:]
    assert (reason, message) == ("OOMKilled", f"pod digits-2 was OOMKilled (exit code 137); {work.oom_advice}")


@BOTH
def test_a_spent_budget_names_the_last_failure(work):
    pods = [ended(work, 1, "2026-11-29T10:00:01Z", message="RuntimeError: boom")]
    assert outcome(job("Failed", "BackoffLimitExceeded"), pods, work)[1:] == (
        "BackoffLimitExceeded",
        "the restart budget (spec.maxRestarts) is spent; last failure: pod digits-0 exited 1: RuntimeError: boom",
    )
    assert (
        outcome(job("Failed", "BackoffLimitExceeded"), [], work)[2] == "the restart budget (spec.maxRestarts) is spent"
    )


@BOTH
def test_other_failures_keep_the_job_controllers_reason(work):
    failed = job("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    assert outcome(failed, [], work) == ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")


def test_a_finished_resource_keeps_its_completion_time_when_its_job_is_gone():
    running = {"status": {"failed": 2, "startTime": "2026-11-29T09:00:00Z"}}
    assert run_fields(running, "Running", {}, "2026-11-29T10:00:00Z") == {
        "restarts": 2,
        "startTime": "2026-11-29T09:00:00Z",
    }
    done = {"status": {"startTime": "2026-11-29T09:00:00Z", "completionTime": "2026-11-29T09:30:00Z"}}
    assert run_fields(done, "Succeeded", {}, "2026-11-29T10:00:00Z")["completionTime"] == "2026-11-29T09:30:00Z"
    previous = {"completionTime": "2026-11-29T09:30:00Z"}
    assert run_fields(None, "Succeeded", previous, "2026-11-29T10:00:00Z") == {
        "restarts": 0,
        "completionTime": "2026-11-29T09:30:00Z",
    }
    assert run_fields(None, "Failed", {}, "2026-11-29T10:00:00Z")["completionTime"] == "2026-11-29T10:00:00Z"
