"""lmaas_operator.compressjob.status: what kubectl get compressjobs shows."""

import json

from lmaas_api import contract
from lmaas_operator.compressjob.status import compute_status
from lmaas_operator.references import Resolution
from tests.unit.operator.builders import stored

CR = stored(
    {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "CompressJob",
        "metadata": {"name": "small"},
        "spec": {"model": {"fromTrainJob": "digits"}, "steps": [{"prune": {"sparsity": 0.5}}, {"quantize": {}}]},
    }
)
READY = Resolution("ready", "ProducerSucceeded", "", uri="pvc://a/t/artifact", producer="TrainJob/digits")
WAITING = Resolution(
    "waiting", "WaitingForProducer", "waiting for TrainJob/digits to succeed (now Running)", producer="TrainJob/digits"
)
URI = "pvc://a/compressjobs/ml/small"


def event(kind, **fields):
    line = dict.fromkeys(contract.PROGRESS_KEYS)
    line.update(event=kind, time="2026-11-29T10:00:00Z", **fields)
    return line


def terminated_pod(code, message, reason="Error"):
    return {
        "metadata": {"name": "small-x"},
        "status": {
            "phase": "Failed" if code else "Succeeded",
            "containerStatuses": [
                {
                    "name": "compressor",
                    "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}},
                }
            ],
        },
    }


def job(*conditions, failed=0):
    return {
        "status": {"failed": failed, "conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions]}
    }


def status_of(resolution, job_=None, pods=(), events=(), previous=None):
    return compute_status(CR, resolution, job_, list(pods), list(events), previous or {}, URI, "2026-11-29T10:05:00Z")


def test_waiting_for_the_producer_says_on_what():
    status = status_of(WAITING)
    assert (status["phase"], status["reason"]) == ("Waiting", "WaitingForProducer")
    assert "TrainJob/digits" in status["message"]
    waiting = [c for c in status["conditions"] if c["type"] == "Waiting"][0]
    assert waiting["status"] == "True"
    assert status["progress"]["summary"] == "0/2"


def test_the_input_is_recorded_and_kept_once_chosen():
    first = status_of(READY, job())
    assert first["input"] == {"uri": "pvc://a/t/artifact", "producer": "TrainJob/digits"}
    newer = Resolution("ready", "ProducerSucceeded", "", uri="pvc://a/t2/artifact", producer="TrainJob/digits")
    assert status_of(newer, job(), previous=first)["input"] == first["input"]


def test_steps_progress_and_the_report_on_success():
    running = status_of(
        READY,
        job(),
        [{"metadata": {"name": "p"}, "status": {"phase": "Running"}}],
        [event("progress", step=1, totalSteps=2, message="quantize")],
    )
    assert running["phase"] == "Running" and running["progress"]["summary"] == "1/2 quantize"
    report = {
        "sizeRatio": 0.19,
        "accuracyDelta": -0.4,
        "latencySpeedup": 1.8,
        "steps": [{"name": "input", "sizeBytes": 100}],
    }
    done = event(
        "done",
        step=2,
        totalSteps=2,
        artifact={"path": "artifact", "sizeBytes": 19, "metrics": {**report, "accuracy": 96.1}},
    )
    final = status_of(
        READY, job(("Complete", "")), [terminated_pod(0, json.dumps(done), "Completed")], previous=running
    )
    assert final["phase"] == "Succeeded"
    assert final["report"] == report
    assert final["artifact"]["uri"] == f"{URI}/artifact"
    assert final["progress"]["summary"] == "2/2"


def test_a_broken_accuracy_bound_fails_naming_the_step_and_keeps_the_report():
    error = event(
        "error",
        message="step 1 (prune): accuracy 91.2 is 5.3 points below the input's 96.5 (maxAccuracyDrop 1.0)",
        artifact={"path": "artifact", "metrics": {"sizeRatio": 0.5, "accuracyDelta": -5.3}},
    )
    status = status_of(
        READY, job(("Failed", "PodFailurePolicy")), [terminated_pod(contract.EXIT_QUALITY_BOUND, json.dumps(error))]
    )
    assert (status["phase"], status["reason"]) == ("Failed", "AccuracyBoundExceeded")
    assert "step 1 (prune)" in status["message"] and "maxAccuracyDrop 1.0" in status["message"]
    assert status["report"] == {"sizeRatio": 0.5, "accuracyDelta": -5.3}


def test_a_failed_producer_fails_the_job_before_it_starts():
    failed = Resolution("failed", "ProducerFailed", "TrainJob/digits failed: OOMKilled", producer="TrainJob/digits")
    status = status_of(failed)
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "ProducerFailed",
        "TrainJob/digits failed: OOMKilled",
    )
