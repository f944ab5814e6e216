"""TrainJob on the real control plane: the operator in-process, the Job controller real, the
kubelet played by the test (there is no kubelet or scheduler here; see kubelet.py)."""

import json
import time

import pytest

from lmaas_api import contract
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
SELECTOR = "lmaas.io/trainjob={}"


def trainjob(name, **spec):
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 2, **spec},
    }


def progress_line(kind, **fields):
    line = dict.fromkeys(contract.PROGRESS_KEYS)
    line.update(event=kind, time="2026-11-29T09:30:00Z", **fields)
    return json.dumps(line)


def status(kubectl, name, namespace):
    return kubectl.get("trainjob", name, namespace).get("status") or {}


def wait_phase(kubectl, name, namespace, phase, timeout=45):
    return wait_for(
        lambda: (s := status(kubectl, name, namespace)).get("phase") == phase and s,
        timeout=timeout,
        what=f"TrainJob {name} phase {phase} (now {status(kubectl, name, namespace).get('phase')})",
    )


def test_children_are_created_with_the_torchrun_contract(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("digits", procsPerNode=2), namespace=namespace)
    job = wait_for(
        lambda: kubectl.exists("job", "digits", namespace) and kubectl.get("job", "digits", namespace), what="the Job"
    )
    assert kubectl.get("service", "digits", namespace)["spec"]["clusterIP"] == "None"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"
    # The real Job controller made one pod per node, each with its completion index.
    pods = kubelet.wait_for_pods(namespace, SELECTOR.format("digits"), 2)
    indexes = sorted(p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indexes == ["0", "1"]
    env = {e.name: e.value for e in pods[0].spec.containers[0].env}
    assert env["PET_NNODES"] == "2" and env["PET_NPROC_PER_NODE"] == "2"
    assert env["PET_RDZV_ENDPOINT"] == "digits-0.digits:29400"
    assert pods[0].spec.hostname.startswith("digits-") and pods[0].spec.subdomain == "digits"
    # The worker's config file is the TrainJob, projected from the pod's own annotation.
    config = json.loads(pods[0].metadata.annotations["lmaas.io/config"])
    assert config["metadata"]["uid"] == kubectl.get("trainjob", "digits", namespace)["metadata"]["uid"]
    assert config["spec"]["procsPerNode"] == 2
    (volume,) = [v for v in pods[0].spec.volumes if v.name == "config"]
    assert volume.downward_api.items[0].field_ref.field_path == "metadata.annotations['lmaas.io/config']"


def test_running_progress_success_and_artifact(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("digits"), namespace=namespace)
    pods = kubelet.wait_for_pods(namespace, SELECTOR.format("digits"), 2)
    assert wait_phase(kubectl, "digits", namespace, "Pending")["reason"] in ("Starting", "Creating")
    for pod in pods:
        kubelet.run(pod)
    rank0 = [p for p in pods if p.metadata.annotations["batch.kubernetes.io/job-completion-index"] == "0"][0]
    kubelet.set_log(
        rank0,
        "trainer",
        "\n".join(
            [
                "INFO starting",  # logs for people are skipped
                progress_line("start", totalSteps=400, totalEpochs=5),
                progress_line(
                    "progress", epoch=2, totalEpochs=5, step=120, totalSteps=400, loss=0.4321, samplesPerSecond=1500.0
                ),
                progress_line("checkpoint", step=100, checkpoint={"step": 100, "path": "checkpoints/step-00000100"}),
            ]
        ),
    )
    running = wait_for(
        lambda: (s := status(kubectl, "digits", namespace)).get("progress", {}).get("step") == 120 and s,
        what="progress from rank 0's log",
    )
    assert running["phase"] == "Running"
    assert running["latestCheckpoint"]["step"] == 100
    table = kubectl("get", "trainjobs", namespace=namespace).stdout
    assert "Running" in table and "120/400 (30%)" in table and "0.4321" in table
    # Rank 0 finishes: the Job's success policy completes it and the TrainJob reports its artifact.
    done = progress_line(
        "done",
        step=400,
        totalSteps=400,
        artifact={"path": "artifact", "sizeBytes": 51234, "metrics": {"accuracy": 96.9}},
    )
    kubelet.succeed(rank0, message=done)
    final = wait_phase(kubectl, "digits", namespace, "Succeeded")
    assert final["artifact"]["uri"] == f"pvc://artifacts/trainjobs/{namespace}/digits/artifact"
    assert final["artifact"]["sizeBytes"] == 51234 and final["artifact"]["metrics"] == {"accuracy": 96.9}
    assert final["completionTime"]
    assert {c["type"]: c["status"] for c in final["conditions"]}["Succeeded"] == "True"


def test_failures_past_the_restart_budget_fail_with_the_reason(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("oom", nodes=1, maxRestarts=1), namespace=namespace)
    for _ in range(2):  # the first failure is retried with a new pod, the second spends the budget
        (pod,) = kubelet.wait_for_pods(namespace, SELECTOR.format("oom"), 1)
        kubelet.run(pod)
        kubelet.terminate(pod, exit_code=137, reason="OOMKilled")
    failed = wait_phase(kubectl, "oom", namespace, "Failed")
    assert failed["reason"] == "OOMKilled"
    assert "exit code 137" in failed["message"]
    assert failed["restarts"] == 2


def test_a_configuration_error_fails_at_once(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("broken", nodes=1, maxRestarts=5), namespace=namespace)
    (pod,) = kubelet.wait_for_pods(namespace, SELECTOR.format("broken"), 1)
    kubelet.run(pod)
    error = progress_line("error", message="spec.model.factory: cannot import module 'nowhere'")
    kubelet.terminate(pod, exit_code=contract.EXIT_CONFIG_ERROR, message=error)
    failed = wait_phase(kubectl, "broken", namespace, "Failed")
    assert failed["reason"] == "ConfigError"
    assert "cannot import module 'nowhere'" in failed["message"]
    assert failed["restarts"] == 1  # the budget of 5 was not spent


def test_unschedulable_pods_are_reported(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("big", nodes=1, resources={"limits": {"nvidia.com/gpu": 8}}), namespace=namespace)
    (pod,) = kubelet.wait_for_pods(namespace, SELECTOR.format("big"), 1)
    kubelet.unschedulable(pod, "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.")
    pending = wait_for(
        lambda: (s := status(kubectl, "big", namespace)).get("reason") == "Unschedulable" and s, what="Unschedulable"
    )
    assert pending["phase"] == "Pending" and "Insufficient nvidia.com/gpu" in pending["message"]


def test_suspend_and_resume(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("pause"), namespace=namespace)
    kubelet.wait_for_pods(namespace, SELECTOR.format("pause"), 2)
    kubectl("patch", "trainjob", "pause", "--type=merge", "-p", '{"spec":{"suspend":true}}', namespace=namespace)
    wait_phase(kubectl, "pause", namespace, "Suspended")
    assert kubectl.get("job", "pause", namespace)["spec"]["suspend"] is True
    wait_for(
        lambda: not kubelet.wait_for_pods(namespace, SELECTOR.format("pause"), 0), what="pods removed while suspended"
    )
    kubectl("patch", "trainjob", "pause", "--type=merge", "-p", '{"spec":{"suspend":false}}', namespace=namespace)
    kubelet.wait_for_pods(namespace, SELECTOR.format("pause"), 2)
    assert wait_phase(kubectl, "pause", namespace, "Pending")


def test_the_operator_writes_only_the_status_and_records_the_generation_it_applied(
    operator, kubectl, kubelet, namespace
):
    """The resource's metadata and spec stay the user's (nothing for a GitOps tool to see as drift);
    status.observedGeneration says which spec the children follow, and a spec edit moves it on."""
    kubectl.apply(trainjob("mine"), namespace=namespace)
    wait_for(lambda: status(kubectl, "mine", namespace).get("observedGeneration") == 1, what="observedGeneration 1")
    wait_phase(kubectl, "mine", namespace, "Pending")  # the status timer has written too
    body = kubectl.json("get", "trainjob", "mine", "-n", namespace, "--show-managed-fields")
    assert not body["metadata"].get("annotations", {}).keys() - {"kubectl.kubernetes.io/last-applied-configuration"}
    writers = {(f["manager"], f.get("subresource", "")) for f in body["metadata"]["managedFields"]}
    assert {subresource for manager, subresource in writers if not manager.startswith("kubectl")} == {"status"}, writers
    kubectl("patch", "trainjob", "mine", "--type=merge", "-p", '{"spec":{"suspend":true}}', namespace=namespace)
    wait_for(lambda: kubectl.get("job", "mine", namespace)["spec"]["suspend"] is True, what="the Job suspended")
    wait_for(lambda: status(kubectl, "mine", namespace).get("observedGeneration") == 2, what="observedGeneration 2")


def test_a_deleted_child_is_restored_and_deletion_collects_everything(operator, kubectl, kubelet, namespace):
    kubectl.apply(trainjob("keep"), namespace=namespace)
    wait_for(lambda: kubectl.exists("service", "keep", namespace), what="the Service")
    kubectl("delete", "service", "keep", namespace=namespace)
    wait_for(lambda: kubectl.exists("service", "keep", namespace), what="the Service restored")
    kubectl("delete", "trainjob", "keep", namespace=namespace)
    for kind, name in (("job", "keep"), ("service", "keep")):
        wait_for(
            lambda kind=kind, name=name: not kubectl.exists(kind, name, namespace),
            what=f"{kind} {name} garbage-collected",
        )


def test_clashing_env_is_rejected_at_apply(kubectl, namespace):
    result = kubectl.apply(
        trainjob("clash", env=[{"name": "MASTER_ADDR", "value": "10.0.0.9"}]), namespace=namespace, check=False
    )
    assert result.returncode != 0
    assert "env MASTER_ADDR is set by lmaas for torchrun and cannot be overridden" in result.stderr


def test_a_finished_trainjob_keeps_its_result_after_its_job_is_collected(operator, kubectl, kubelet, namespace):
    """ttlSecondsAfterFinished: 0 deletes the Job and its pods once the result is in the status;
    the TrainJob stays Succeeded, and a later edit (or an operator restart, which resumes it the
    same way) does not start the training over."""
    kubectl.apply(trainjob("once", nodes=1, ttlSecondsAfterFinished=0), namespace=namespace)
    (pod,) = kubelet.wait_for_pods(namespace, SELECTOR.format("once"), 1)
    kubelet.run(pod)
    kubelet.succeed(
        pod,
        message=progress_line(
            "done", step=10, totalSteps=10, artifact={"path": "artifact", "sizeBytes": 7, "metrics": {}}
        ),
    )
    wait_for(lambda: not kubectl.exists("job", "once", namespace), timeout=60, what="the Job deleted (TTL 0)")
    wait_for(lambda: not kubelet.pods(namespace, SELECTOR.format("once")), what="its pods deleted with it")
    final = status(kubectl, "once", namespace)
    assert final["phase"] == "Succeeded" and final["artifact"]["sizeBytes"] == 7
    kubectl("patch", "trainjob", "once", "--type=merge", "-p", '{"spec":{"suspend":true}}', namespace=namespace)
    wait_for(lambda: status(kubectl, "once", namespace).get("observedGeneration") == 2, what="the edit handled")
    time.sleep(2 * 3.0)  # two status refreshes
    assert not kubectl.exists("job", "once", namespace), "the finished TrainJob's Job was created again"
    assert status(kubectl, "once", namespace)["phase"] == "Succeeded"
