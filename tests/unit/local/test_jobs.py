"""lmaas_operator.local.jobs: the local Job controller, over pods that are real (short) processes."""

import time

from tests.unit.local.resources import condition, container_state, job_manifest, run_to_the_end

SUCCEED = "pass"
SLEEP_IN_INDEX_1 = "import os, time\nif os.environ['INDEX'] == '1': time.sleep(60)"
FAIL_WITH_78 = "import sys; sys.exit(78)"
FAIL_WITH_3 = "import sys; sys.exit(3)"
SLEEP = "import time; time.sleep(60)"
FAIL_JOB_ON_78 = {
    "rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "w", "operator": "In", "values": [78]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]
}


def test_a_job_whose_indexes_all_succeed_is_complete(local_job):
    job = local_job(job_manifest(SUCCEED, completions=3))
    status = run_to_the_end(job)
    assert condition(status, "Complete") is not None
    assert condition(status, "Failed") is None
    assert (status["succeeded"], status["failed"], status["active"]) == (3, 0, 0)
    assert status["startTime"] and status["completionTime"]
    assert [p["metadata"]["name"] for p in job.pod_manifests()] == ["w-0-0", "w-1-0", "w-2-0"]
    assert [p["status"]["phase"] for p in job.pod_manifests()] == ["Succeeded"] * 3


def test_indexes_get_their_own_completion_index(local_job, tmp_path):
    script = (
        "import os, pathlib\nout = pathlib.Path(os.environ['OUT'])\nout.mkdir(parents=True, exist_ok=True)\n"
        "(out / os.environ['INDEX']).write_text('done')"
    )
    job = local_job(job_manifest(script, completions=2))
    assert condition(run_to_the_end(job), "Complete") is not None
    assert sorted(p.name for p in (tmp_path / "volumes" / "claim" / "runs" / "out").iterdir()) == ["0", "1"]
    annotations = [
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in job.pod_manifests()
    ]
    assert annotations == ["0", "1"]


def test_a_success_policy_completes_the_job_when_index_0_succeeds_and_stops_the_rest(local_job):
    job = local_job(job_manifest(SLEEP_IN_INDEX_1, completions=2, successPolicy={"rules": [{"succeededIndexes": "0"}]}))
    started = time.monotonic()
    status = run_to_the_end(job)
    assert time.monotonic() - started < 8, "index 1 was waited for"
    assert condition(status, "SuccessCriteriaMet") is not None
    assert condition(status, "Complete") is not None
    assert (status["succeeded"], status["active"]) == (1, 0)
    first, second = job.pods
    assert not second.running
    assert container_state(second.status())["terminated"]["exitCode"] == 143  # SIGTERM, as a pod deletion


def test_an_exit_code_matching_a_failjob_rule_fails_the_job_at_once_without_a_retry(local_job):
    job = local_job(job_manifest(FAIL_WITH_78, backoffLimit=3, podFailurePolicy=FAIL_JOB_ON_78))
    status = run_to_the_end(job)
    failed = condition(status, "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "exit code 78" in failed["message"] and "w-0-0" in failed["message"]
    assert condition(status, "FailureTarget")["reason"] == "PodFailurePolicy"
    assert len(job.pods) == 1


def test_an_exit_code_outside_a_notin_failjob_rule_fails_the_job_at_once(local_job):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [78]}}]}
    job = local_job(job_manifest(FAIL_WITH_3, backoffLimit=3, podFailurePolicy=policy))
    status = run_to_the_end(job)
    assert condition(status, "Failed")["reason"] == "PodFailurePolicy"
    assert len(job.pods) == 1


def test_other_exit_codes_are_retried_until_the_backoff_limit(local_job):
    job = local_job(job_manifest(FAIL_WITH_3, backoffLimit=1, podFailurePolicy=FAIL_JOB_ON_78))
    status = run_to_the_end(job)
    assert condition(status, "Failed")["reason"] == "BackoffLimitExceeded"
    assert status["failed"] == 2
    assert [p.name for p in job.pods] == ["w-0-0", "w-0-1"]
    assert [container_state(p)["terminated"]["exitCode"] for p in job.pod_manifests()] == [3, 3]


def test_a_retried_index_that_then_succeeds_completes_the_job(local_job, tmp_path):
    # The first attempt leaves a mark on the claim and fails; the second finds it and succeeds.
    script = (
        "import os, pathlib, sys\nmark = pathlib.Path(os.environ['OUT'], 'tried')\n"
        "if not mark.exists():\n    mark.parent.mkdir(parents=True)\n    mark.write_text('')\n    sys.exit(1)"
    )
    job = local_job(job_manifest(script, backoffLimit=2))
    status = run_to_the_end(job)
    assert condition(status, "Complete") is not None
    assert (status["succeeded"], status["failed"]) == (1, 1)


def test_a_job_running_past_its_active_deadline_fails_and_its_pods_are_stopped(local_job):
    job = local_job(job_manifest(SLEEP, activeDeadlineSeconds=1))
    started = time.monotonic()
    status = run_to_the_end(job)
    assert 1 <= time.monotonic() - started < 8
    failed = condition(status, "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    assert not job.pods[0].running
    assert status["active"] == 0


def test_a_missing_secret_fails_the_job_naming_the_secret(local_job):
    job = local_job(job_manifest(SUCCEED), secrets={})
    status = run_to_the_end(job)
    failed = condition(status, "Failed")
    assert failed["reason"] == "CreateContainerConfigError"
    assert 'secret "creds"' in failed["message"] and "TOKEN" in failed["message"]
    (pod,) = job.pod_manifests()
    assert pod["status"]["phase"] == "Pending"
    assert container_state(pod)["waiting"]["reason"] == "CreateContainerConfigError"


def test_a_suspended_job_starts_no_pod(local_job):
    job = local_job(job_manifest(SUCCEED, suspend=True))
    job.start()
    job.step()
    status = job.manifest()["status"]
    assert condition(status, "Suspended")["reason"] == "JobSuspended"
    assert job.pods == [] and not job.finished
    assert "startTime" not in status
