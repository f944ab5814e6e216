"""lmaas_operator.trainjob.status: phases, reasons and progress a user sees in kubectl get."""

import json

from lmaas_api import contract
from lmaas_operator.trainjob.status import compute_status
from tests.unit.operator.builders import stored

TRAIN = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "digits"},
    "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 2},
}
CR = stored(TRAIN)
URI = "pvc://artifacts/trainjobs/ml/digits"
NOW = "2026-11-29T10:00:00Z"


def job(conditions=(), failed=0, active=0, start="2026-11-29T09:00:00Z", completion=None):
    status = {
        "failed": failed,
        "active": active,
        "startTime": start,
        "conditions": [{"type": t, "status": "True", "reason": r, "message": m} for t, r, m in conditions],
    }
    if completion:
        status["completionTime"] = completion
    return {"metadata": {"name": "digits"}, "status": status}


def pod(name, phase="Pending", waiting=None, terminated=None, unschedulable=None):
    status = {"phase": phase, "conditions": [], "containerStatuses": []}
    if unschedulable:
        status["conditions"].append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        )
    if waiting:
        status["containerStatuses"].append(
            {"name": "trainer", "state": {"waiting": {"reason": waiting, "message": f"{waiting}!"}}}
        )
    if terminated:
        status["containerStatuses"].append({"name": "trainer", "state": {"terminated": terminated}})
    return {"metadata": {"name": name}, "status": status}


def status_of(job_, pods=(), events=(), previous=None, cr=CR):
    return compute_status(cr, job_, list(pods), list(events), previous or {}, URI, NOW)


def event(kind, **fields):
    line = dict.fromkeys(contract.PROGRESS_KEYS)
    line.update(event=kind, time="2026-11-29T09:30:00Z", **fields)
    return line


def test_no_job_yet_is_pending():
    status = status_of(None)
    assert (status["phase"], status["reason"]) == ("Pending", "Creating")
    assert status["nodes"] == "2" and status["observedGeneration"] == 1


def test_all_nodes_running_is_running_with_progress_from_rank_0():
    pods = [pod("digits-0-x", "Running"), pod("digits-1-y", "Running")]
    events = [event("progress", epoch=1, totalEpochs=5, step=40, totalSteps=200, loss=0.71, samplesPerSecond=812.5)]
    status = status_of(job(active=2), pods, events)
    assert status["phase"] == "Running"
    assert status["progress"]["summary"] == "40/200 (20%)"
    assert status["progress"]["loss"] == 0.71
    assert status["progress"]["updatedAt"] == "2026-11-29T09:30:00Z"
    running = [c for c in status["conditions"] if c["type"] == "Running"][0]
    assert running["status"] == "True"


def test_progress_survives_a_refresh_without_new_lines_and_checkpoints_are_tracked():
    pods = [pod("digits-0", "Running"), pod("digits-1", "Running")]
    first = status_of(
        job(active=2),
        pods,
        [
            event("progress", step=100, totalSteps=200, loss=0.5),
            event("checkpoint", step=100, checkpoint={"step": 100, "path": "checkpoints/step-00000100"}),
        ],
    )
    again = status_of(job(active=2), pods, [], previous=first)
    assert again == first  # nothing new: identical, so nothing is written
    assert again["latestCheckpoint"]["uri"] == f"{URI}/checkpoints/step-00000100"


def test_conditions_keep_their_transition_time_until_the_phase_changes():
    pods = [pod("digits-0", "Running"), pod("digits-1", "Running")]
    first = status_of(job(active=2), pods)
    later = compute_status(CR, job(active=2), pods, [], first, URI, "2026-11-29T11:00:00Z")
    assert later["conditions"] == first["conditions"]
    finished = [pod("digits-0", "Succeeded", terminated={"exitCode": 0, "reason": "Completed"}), pods[1]]
    done = compute_status(CR, job([("Complete", "", "")]), finished, [], first, URI, "2026-11-29T11:00:00Z")
    succeeded = [c for c in done["conditions"] if c["type"] == "Succeeded"][0]
    assert succeeded["lastTransitionTime"] == "2026-11-29T11:00:00Z"


def test_unschedulable_and_image_pull_problems_are_named():
    status = status_of(job(active=2), [pod("digits-0", unschedulable="0/3 nodes have enough nvidia.com/gpu")])
    assert (status["phase"], status["reason"]) == ("Pending", "Unschedulable")
    assert "nvidia.com/gpu" in status["message"]
    status = status_of(job(active=2), [pod("digits-0", waiting="ImagePullBackOff")])
    assert (status["phase"], status["reason"]) == ("Pending", "ImagePullBackOff")


def test_success_carries_the_artifact_from_rank_0s_termination_message():
    done = event(
        "done",
        step=200,
        totalSteps=200,
        artifact={"path": "artifact", "sizeBytes": 45123, "metrics": {"accuracy": 96.4}},
    )
    pods = [
        pod("digits-0", "Succeeded", terminated={"exitCode": 0, "reason": "Completed", "message": json.dumps(done)})
    ]
    status = status_of(
        job([("SuccessCriteriaMet", "SuccessPolicy", ""), ("Complete", "", "")], completion="2026-11-29T09:50:00Z"),
        pods,
    )
    assert status["phase"] == "Succeeded"
    assert status["artifact"] == {
        "uri": f"{URI}/artifact",
        "sizeBytes": 45123,
        "metrics": {"accuracy": 96.4},
        "createdAt": "2026-11-29T09:30:00Z",
    }
    assert status["completionTime"] == "2026-11-29T09:50:00Z"


def test_a_configuration_error_fails_with_the_workers_reason():
    error = event("error", message="spec.model.factory: cannot import 'mypkg.models'")
    pods = [
        pod(
            "digits-0",
            "Failed",
            terminated={"exitCode": contract.EXIT_CONFIG_ERROR, "reason": "Error", "message": json.dumps(error)},
        )
    ]
    status = status_of(
        job([("Failed", "PodFailurePolicy", "Container trainer for pod ml/digits-0 failed with exit code 78")]), pods
    )
    assert (status["phase"], status["reason"]) == ("Failed", "ConfigError")
    assert "cannot import 'mypkg.models'" in status["message"]


def test_oom_past_the_budget_says_oomkilled_with_the_exit_code():
    pods = [
        pod(
            f"digits-0-{i}",
            "Failed",
            terminated={"exitCode": 137, "reason": "OOMKilled", "finishedAt": f"2026-11-29T09:0{i}:00Z"},
        )
        for i in range(4)
    ]
    status = status_of(
        job([("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")], failed=4), pods
    )
    assert (status["phase"], status["reason"]) == ("Failed", "OOMKilled")
    assert "exit code 137" in status["message"] and "limits.memory" in status["message"]
    assert status["restarts"] == 4


def test_a_complete_job_whose_pod_result_is_not_seen_yet_is_still_finishing():
    status = status_of(job([("Complete", "", "")]), [pod("digits-0", "Running")])
    assert (status["phase"], status["reason"]) == ("Running", "Finishing")


def test_deadline_exceeded_is_reported_as_such():
    status = status_of(job([("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")]))
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")


def test_a_crashed_node_being_replaced_is_restarting():
    pods = [
        pod("digits-0-a", "Running"),
        pod("digits-1-b", "Failed", terminated={"exitCode": 1, "reason": "Error", "message": "RuntimeError: boom"}),
    ]
    status = status_of(job(failed=1, active=1), pods)
    assert (status["phase"], status["reason"]) == ("Restarting", "PodFailed")
    assert "digits-1-b exited 1" in status["message"] and "boom" in status["message"]


def test_suspended_job_is_suspended():
    cr = stored({**TRAIN, "spec": {**TRAIN["spec"], "suspend": True}})
    status = status_of(job([("Suspended", "JobSuspended", "")]), cr=cr)
    assert status["phase"] == "Suspended"


def test_elastic_jobs_show_their_node_range_and_run_at_the_minimum():
    doc = {
        **TRAIN,
        "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "minNodes": 2, "maxNodes": 4},
    }
    status = status_of(job(active=4), [pod("a", "Running"), pod("b", "Running"), pod("c"), pod("d")], cr=stored(doc))
    assert status["nodes"] == "2:4"
    assert status["phase"] == "Running"
