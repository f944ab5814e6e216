"""lmaas_operator.modelservice.status: what kubectl get modelservices shows."""

from lmaas_operator.config import OperatorConfig
from lmaas_operator.modelservice.builders import render_children
from lmaas_operator.modelservice.status import compute_status
from lmaas_operator.references import Resolution
from tests.unit.operator.builders import stored

CR = stored(
    {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "ModelService",
        "metadata": {"name": "digits"},
        "spec": {"model": {"fromTrainJob": "t"}, "replicas": 2},
    }
)
MODEL = Resolution(
    "ready", "ProducerSucceeded", "", uri="pvc://a/t/artifact", producer="TrainJob/t", created_at="2026-11-29T10:00:00Z"
)
NOW = "2026-11-29T11:00:00Z"


def deployment(ready, updated=2, replicas=2, generation=1, observed=1):
    body = [
        c
        for c in render_children(CR, OperatorConfig(worker_image="w:1", peering_priority=1), MODEL)
        if c["kind"] == "Deployment"
    ][0]
    body["metadata"]["generation"] = generation
    body["status"] = {
        "observedGeneration": observed,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
    }
    return body


def test_waiting_then_deploying_then_ready():
    waiting = Resolution(
        "waiting", "WaitingForProducer", "waiting for TrainJob/t to succeed (now Running)", producer="TrainJob/t"
    )
    assert compute_status(CR, waiting, None, [], {}, NOW)["phase"] == "Waiting"
    deploying = compute_status(CR, MODEL, deployment(ready=0, updated=1, replicas=1), [], {}, NOW)
    assert (deploying["phase"], deploying["reason"]) == ("Deploying", "RollingOut")
    ready = compute_status(CR, MODEL, deployment(ready=2), [], deploying, NOW)
    assert (ready["phase"], ready["readyReplicas"], ready["desiredReplicas"]) == ("Ready", 2, 2)
    assert ready["url"] == "http://digits.ml.svc:8080"
    assert ready["model"] == {
        "uri": "pvc://a/t/artifact",
        "producer": "TrainJob/t",
        "createdAt": "2026-11-29T10:00:00Z",
    }
    assert (
        ready["selector"]
        == "app.kubernetes.io/component=server,app.kubernetes.io/managed-by=lmaas-operator,app.kubernetes.io/part-of=lmaas,lmaas.io/modelservice=digits"
    )


def test_fewer_ready_than_desired_after_rollout_is_degraded_with_the_pods_reason():
    crashing = [
        {
            "metadata": {"name": "digits-abc"},
            "status": {
                "containerStatuses": [
                    {"name": "server", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}
                ]
            },
        }
    ]
    status = compute_status(CR, MODEL, deployment(ready=1), crashing, {"phase": "Ready"}, NOW)
    assert (status["phase"], status["reason"]) == ("Degraded", "CrashLoopBackOff")
    assert status["message"].startswith("1/2 replicas ready")


def test_replicas_still_warming_up_on_the_first_rollout_are_deploying_not_degraded():
    status = compute_status(CR, MODEL, deployment(ready=1), [], {}, NOW)
    assert (status["phase"], status["reason"], status["message"]) == ("Deploying", "WarmingUp", "1/2 replicas ready")


def test_a_failed_producer_fails_the_service():
    failed = Resolution("failed", "ProducerFailed", "TrainJob/t failed: DeadlineExceeded", producer="TrainJob/t")
    status = compute_status(CR, failed, None, [], {}, NOW)
    assert (status["phase"], status["reason"]) == ("Failed", "ProducerFailed")
