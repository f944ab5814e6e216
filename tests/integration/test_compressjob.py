"""CompressJob on the real control plane: it waits for its TrainJob, runs when it succeeds, and
carries a producer's failure. The kubelet is played by the test (see kubelet.py)."""

import json

import pytest

from lmaas_api import contract
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def doc(kind, name, spec):
    return {"apiVersion": "lmaas.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


TRAIN = doc(
    "TrainJob", "digits", {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1, "maxRestarts": 0}
)
COMPRESS = doc(
    "CompressJob",
    "small",
    {"model": {"fromTrainJob": "digits"}, "steps": [{"prune": {"sparsity": 0.5}}, {"quantize": {}}]},
)


def line(kind, **fields):
    event = dict.fromkeys(contract.PROGRESS_KEYS)
    event.update(event=kind, time="2026-11-29T10:00:00Z", **fields)
    return json.dumps(event)


def status(kubectl, kind, name, namespace):
    return kubectl.get(kind, name, namespace).get("status") or {}


def wait_phase(kubectl, kind, name, namespace, phase):
    return wait_for(
        lambda: (s := status(kubectl, kind, name, namespace)).get("phase") == phase and s,
        timeout=45,
        what=f"{kind} {name} {phase}",
    )


def finish_training(kubelet, namespace):
    (pod,) = kubelet.wait_for_pods(namespace, "lmaas.io/trainjob=digits", 1)
    kubelet.run(pod)
    kubelet.succeed(pod, message=line("done", step=10, totalSteps=10, artifact={"path": "artifact", "sizeBytes": 4000}))


def test_applied_with_its_trainjob_it_waits_then_runs_then_reports(operator, kubectl, kubelet, namespace):
    kubectl.apply([TRAIN, COMPRESS], namespace=namespace)
    waiting = wait_phase(kubectl, "compressjob", "small", namespace, "Waiting")
    assert "TrainJob/digits" in waiting["message"]
    assert not kubectl.exists("job", "small", namespace)
    finish_training(kubelet, namespace)
    wait_phase(kubectl, "trainjob", "digits", namespace, "Succeeded")
    (pod,) = kubelet.wait_for_pods(namespace, "lmaas.io/compressjob=small", 1, timeout=45)
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env[contract.INPUT_DIR_ENV] == f"/var/lib/lmaas/volumes/artifacts/trainjobs/{namespace}/digits/artifact"
    kubelet.run(pod)
    kubelet.set_log(pod, "compressor", line("progress", step=1, totalSteps=2, message="quantize"))
    running = wait_for(
        lambda: (
            (s := status(kubectl, "compressjob", "small", namespace)).get("progress", {}).get("completedSteps") == 1
            and s
        ),
        what="steps progress",
    )
    assert running["phase"] == "Running"
    report = {"sizeRatio": 0.21, "accuracyDelta": -0.3, "latencySpeedup": 1.9}
    kubelet.succeed(
        pod,
        message=line("done", step=2, totalSteps=2, artifact={"path": "artifact", "sizeBytes": 840, "metrics": report}),
    )
    final = wait_phase(kubectl, "compressjob", "small", namespace, "Succeeded")
    assert final["input"] == {
        "uri": f"pvc://artifacts/trainjobs/{namespace}/digits/artifact",
        "producer": "TrainJob/digits",
    }
    assert final["report"] == report
    table = kubectl("get", "compressjobs", namespace=namespace).stdout
    assert "Succeeded" in table and "2/2" in table and "0.21" in table and "-0.3" in table


def test_a_failed_producer_fails_the_consumer_with_its_reason(operator, kubectl, kubelet, namespace):
    kubectl.apply([TRAIN, COMPRESS], namespace=namespace)
    (pod,) = kubelet.wait_for_pods(namespace, "lmaas.io/trainjob=digits", 1)
    kubelet.run(pod)
    kubelet.terminate(pod, exit_code=137, reason="OOMKilled")
    failed = wait_phase(kubectl, "compressjob", "small", namespace, "Failed")
    assert failed["reason"] == "ProducerFailed"
    assert "TrainJob/digits failed: OOMKilled" in failed["message"]
    assert not kubectl.exists("job", "small", namespace)


def test_a_running_jobs_deadline_and_restarts_follow_the_spec(operator, kubectl, kubelet, namespace):
    """The CRD lets activeDeadlineSeconds and maxRestarts change while a CompressJob runs: its Job
    follows (a deadline removed is removed), and status.observedGeneration says the edit is in."""
    quick = doc(
        "CompressJob", "quick", {"model": {"uri": "pvc://artifacts/models/digits"}, "steps": [{"quantize": {}}]}
    )
    kubectl.apply(quick, namespace=namespace)
    (pod,) = kubelet.wait_for_pods(namespace, "lmaas.io/compressjob=quick", 1)
    kubelet.run(pod)
    wait_phase(kubectl, "compressjob", "quick", namespace, "Running")
    job = lambda: kubectl.get("job", "quick", namespace)["spec"]
    assert (job()["backoffLimit"], job().get("activeDeadlineSeconds")) == (2, None)
    kubectl(
        "patch",
        "compressjob",
        "quick",
        "--type=merge",
        "-p",
        '{"spec":{"activeDeadlineSeconds":900,"maxRestarts":5}}',
        namespace=namespace,
    )
    wait_for(
        lambda: (job()["backoffLimit"], job().get("activeDeadlineSeconds")) == (5, 900),
        what="the Job's deadline and restarts",
        describe=job,
    )
    wait_for(
        lambda: status(kubectl, "compressjob", "quick", namespace).get("observedGeneration") == 2,
        what="observedGeneration 2",
    )
    kubectl(
        "patch",
        "compressjob",
        "quick",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/activeDeadlineSeconds"}]',
        namespace=namespace,
    )
    wait_for(lambda: "activeDeadlineSeconds" not in job(), what="the deadline removed", describe=job)
    assert pod.metadata.name in [
        p.metadata.name for p in kubelet.wait_for_pods(namespace, "lmaas.io/compressjob=quick", 1)
    ]
