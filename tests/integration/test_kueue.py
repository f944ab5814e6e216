"""TrainJobs under a real Kueue (tests/cluster/kueue.py) on the test control plane: a ClusterQueue
with room for one GPU job, admission, a queued job that stays queued through edits and operator
restarts, preemption by a higher priority. The kubelet is played (see kubelet.py); the operator runs
as its own process so that a test can kill it."""

import json

import pytest
import yaml

from lmaas_api import contract
from lmaas_operator.config import OperatorConfig
from lmaas_operator.trainjob.builders import render_job
from tests.cluster.kueue import Kueue
from tests.integration.conftest import wait_for
from tests.unit.operator.builders import stored

pytestmark = pytest.mark.integration
SELECTOR = "lmaas.io/trainjob={}"


@pytest.fixture(scope="module")
def kueue(cluster, kubectl):
    """Kueue running, with one ClusterQueue that has room for one GPU (preempting lower priorities
    within it) and two WorkloadPriorityClasses."""
    _, test_cluster = cluster
    if test_cluster is None:
        pytest.skip("Kueue is started on the test control plane only")
    with Kueue(test_cluster) as running:
        kubectl.apply(
            [
                {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "gpus"}},
                {
                    "apiVersion": "kueue.x-k8s.io/v1beta2",
                    "kind": "ClusterQueue",
                    "metadata": {"name": "lmaas-test"},
                    "spec": {
                        "namespaceSelector": {},
                        "preemption": {"withinClusterQueue": "LowerPriority"},
                        "resourceGroups": [
                            {
                                "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                                "flavors": [
                                    {
                                        "name": "gpus",
                                        "resources": [
                                            {"name": "cpu", "nominalQuota": "8"},
                                            {"name": "memory", "nominalQuota": "64Gi"},
                                            {"name": "nvidia.com/gpu", "nominalQuota": "1"},
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                },
                *(
                    {
                        "apiVersion": "kueue.x-k8s.io/v1beta2",
                        "kind": "WorkloadPriorityClass",
                        "metadata": {"name": name},
                        "value": value,
                    }
                    for name, value in (("low", 10), ("high", 1000))
                ),
            ]
        )
        yield running


@pytest.fixture
def queue(kueue, kubectl, namespace):
    """A LocalQueue "team-a" in the test's namespace, pointing at the ClusterQueue."""
    kubectl.apply(
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": "team-a"},
            "spec": {"clusterQueue": "lmaas-test"},
        },
        namespace=namespace,
    )
    return "team-a"


def trainjob(name, queue, priority=None, gpus=1):
    labels = {"kueue.x-k8s.io/queue-name": queue}
    if priority:
        labels["kueue.x-k8s.io/priority-class"] = priority
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"builtin": "mlp"},
            "dataset": {"builtin": "digits"},
            "nodes": 1,
            "resources": {
                "requests": {"cpu": "100m", "nvidia.com/gpu": str(gpus)},
                "limits": {"nvidia.com/gpu": str(gpus)},
            },
            "pod": {"labels": labels},
        },
    }


def status(kubectl, name, namespace):
    return kubectl.get("trainjob", name, namespace).get("status") or {}


def wait_phase(kubectl, name, namespace, phase, timeout=60):
    return wait_for(
        lambda: (s := status(kubectl, name, namespace)).get("phase") == phase and s,
        timeout=timeout,
        what=f"TrainJob {name} phase {phase}",
        describe=lambda: status(kubectl, name, namespace),
    )


def workload(kubectl, name, namespace):
    """Kueue's Workload of the TrainJob's Job."""
    owned = [
        w
        for w in kubectl.json("get", "workloads", "-n", namespace)["items"]
        if any(ref["kind"] == "Job" and ref["name"] == name for ref in w["metadata"].get("ownerReferences", []))
    ]
    assert len(owned) == 1, owned
    return owned[0]


def admitted(kubectl, name, namespace):
    conditions = workload(kubectl, name, namespace).get("status", {}).get("conditions", [])
    return any(c["type"] == "Admitted" and c["status"] == "True" for c in conditions)


def suspended(kubectl, name, namespace):
    return kubectl.get("job", name, namespace)["spec"]["suspend"] is True


def never_resumed(kubectl, name, namespace):
    """Whether the Job controller never resumed the Job (Kueue suspends a Job that started against
    its will again at once: only the Job's Events keep the start)."""
    said = [message for _, message in kubectl.events("Job", name, namespace)]
    return not [m for m in said if "resumed" in m.lower() or m.startswith("Created pod")]


def done(name):
    return json.dumps(
        {
            **dict.fromkeys(contract.PROGRESS_KEYS),
            "event": "done",
            "time": "2026-12-06T09:00:00Z",
            "step": 10,
            "totalSteps": 10,
            "artifact": {"path": "artifact", "sizeBytes": 7, "metrics": {}},
        }
    )


def test_a_second_gpu_job_waits_for_quota_through_an_edit_and_a_restart_and_runs_when_the_first_ends(
    queue, operators, kubectl, kubelet, namespace
):
    operator = operators().start()
    kubectl.apply(trainjob("first", queue), namespace=namespace)
    (pod,) = kubelet.wait_for_pods(namespace, SELECTOR.format("first"), 1, timeout=60)
    kubelet.run(pod)
    wait_phase(kubectl, "first", namespace, "Running")
    assert admitted(kubectl, "first", namespace)

    kubectl.apply(trainjob("second", queue), namespace=namespace)
    held = wait_for(
        lambda: "nvidia.com/gpu" in (s := status(kubectl, "second", namespace)).get("message", "") and s,
        what="Kueue's reason in the status",
        describe=lambda: (status(kubectl, "second", namespace), workload(kubectl, "second", namespace).get("status")),
    )
    assert held["phase"] == "Queued" and "LocalQueue team-a" in held["message"], held
    assert suspended(kubectl, "second", namespace) and not admitted(kubectl, "second", namespace)

    # An edit of an allowed field re-applies the Job; an operator killed and started again
    # re-applies it on resume. Neither may start what Kueue holds.
    kubectl(
        "patch",
        "trainjob",
        "second",
        "--type=merge",
        "-p",
        '{"spec":{"activeDeadlineSeconds":900}}',
        namespace=namespace,
    )
    wait_for(
        lambda: kubectl.get("job", "second", namespace)["spec"].get("activeDeadlineSeconds") == 900,
        what="the edit applied to the Job",
    )
    operator.kill()
    restarted = operators().start()
    wait_for(lambda: restarted.reconciles("reconcile_trainjob") >= 2, timeout=60, what="the restarted operator resumed")
    assert suspended(kubectl, "second", namespace) and not admitted(kubectl, "second", namespace)
    assert never_resumed(kubectl, "second", namespace), kubectl.events("Job", "second", namespace)
    assert not kubelet.pods(namespace, SELECTOR.format("second"))
    assert status(kubectl, "second", namespace)["phase"] == "Queued"

    kubelet.succeed(pod, message=done("first"))
    wait_phase(kubectl, "first", namespace, "Succeeded")
    (second,) = kubelet.wait_for_pods(namespace, SELECTOR.format("second"), 1, timeout=60)
    assert admitted(kubectl, "second", namespace)
    kubelet.run(second)
    wait_phase(kubectl, "second", namespace, "Running")


def test_a_higher_priority_job_preempts_a_lower_one_which_runs_again_after_it(
    queue, operators, kubectl, kubelet, namespace
):
    operators().start()
    kubectl.apply(trainjob("low", queue, priority="low"), namespace=namespace)
    (low,) = kubelet.wait_for_pods(namespace, SELECTOR.format("low"), 1, timeout=60)
    kubelet.run(low)
    wait_phase(kubectl, "low", namespace, "Running")

    kubectl.apply(trainjob("high", queue, priority="high"), namespace=namespace)
    preempted = wait_phase(kubectl, "low", namespace, "Preempted")
    assert "LocalQueue team-a" in preempted["message"], preempted["message"]
    assert suspended(kubectl, "low", namespace)
    wait_for(lambda: not kubelet.pods(namespace, SELECTOR.format("low")), what="the preempted job's pod gone")
    (high,) = kubelet.wait_for_pods(namespace, SELECTOR.format("high"), 1, timeout=60)
    kubelet.run(high)
    wait_phase(kubectl, "high", namespace, "Running")

    kubelet.succeed(high, message=done("high"))
    wait_phase(kubectl, "high", namespace, "Succeeded")
    (again,) = kubelet.wait_for_pods(namespace, SELECTOR.format("low"), 1, timeout=60)
    kubelet.run(again)
    resumed = wait_phase(kubectl, "low", namespace, "Running")
    assert resumed["restarts"] == 0, resumed  # a preemption spends none of spec.maxRestarts


def test_a_queued_job_that_an_earlier_lmaas_applied_suspend_to_stays_held_when_the_operator_starts(
    queue, operators, kubectl, kubelet, namespace
):
    """An earlier lmaas always applied `suspend: false`; Kueue's webhook held the Job all the same
    (a webhook's change is the applier's in managedFields). The operator, which now leaves suspend
    out, must not let server-side apply remove the field it owned and so start the Job."""
    doc = trainjob("older", queue, gpus=2)  # more GPUs than the queue has: never admitted
    kubectl.apply(doc, namespace=namespace)
    uid = kubectl.get("trainjob", "older", namespace)["metadata"]["uid"]
    job = render_job(
        stored(doc, namespace=namespace, uid=uid), OperatorConfig(worker_image="lmaas/worker:test", peering_priority=1)
    )
    job["spec"]["suspend"] = False
    kubectl(
        "apply",
        "--server-side",
        "--field-manager=lmaas-operator",
        "-f",
        "-",
        input=yaml.safe_dump(job),
        namespace=namespace,
    )
    assert suspended(kubectl, "older", namespace)  # Kueue's webhook
    operators().start()
    held = wait_phase(kubectl, "older", namespace, "Queued")
    wait_for(lambda: status(kubectl, "older", namespace).get("observedGeneration") == 1, what="the operator applied")
    assert suspended(kubectl, "older", namespace) and never_resumed(kubectl, "older", namespace), kubectl.events(
        "Job", "older", namespace
    )
    assert "nvidia.com/gpu" in status(kubectl, "older", namespace)["message"], held
