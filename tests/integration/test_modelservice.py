"""ModelService on the real control plane: the Deployment, ReplicaSet, HPA and disruption
controllers are real; the kubelet is played by the test (see kubelet.py)."""

import json

import pytest

from lmaas_api import contract
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
PODS = "lmaas.io/modelservice=digits"


def doc(kind, name, spec):
    return {"apiVersion": "lmaas.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


TRAIN = doc("TrainJob", "digits", {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1})
SERVE = doc("ModelService", "digits", {"model": {"fromTrainJob": "digits"}, "replicas": 2})


def done_line(time):
    event = dict.fromkeys(contract.PROGRESS_KEYS)
    event.update(event="done", time=time, step=10, totalSteps=10, artifact={"path": "artifact", "sizeBytes": 4000})
    return json.dumps(event)


def status(kubectl, namespace, name="digits"):
    return kubectl.get("modelservice", name, namespace).get("status") or {}


def train(kubectl, kubelet, namespace, time):
    (pod,) = kubelet.wait_for_pods(namespace, "lmaas.io/trainjob=digits", 1)
    kubelet.run(pod)
    kubelet.succeed(pod, message=done_line(time))
    wait_for(
        lambda: kubectl.get("trainjob", "digits", namespace).get("status", {}).get("phase") == "Succeeded",
        what="training",
    )


def make_ready(kubelet, namespace, count):
    for pod in kubelet.wait_for_pods(namespace, PODS, count):
        kubelet.run(pod)


def test_waits_deploys_becomes_ready_scales_and_rolls_forward(operator, kubectl, kubelet, namespace):
    kubectl.apply([TRAIN, SERVE], namespace=namespace)
    waiting = wait_for(lambda: (s := status(kubectl, namespace)).get("phase") == "Waiting" and s, what="Waiting")
    assert "TrainJob/digits" in waiting["message"]
    train(kubectl, kubelet, namespace, "2026-11-29T10:00:00Z")

    deployment = wait_for(
        lambda: kubectl.exists("deployment", "digits", namespace) and kubectl.get("deployment", "digits", namespace),
        what="the Deployment",
    )
    assert deployment["spec"]["replicas"] == 2
    assert (
        deployment["spec"]["template"]["metadata"]["annotations"]["lmaas.io/artifact"]
        == f"pvc://artifacts/trainjobs/{namespace}/digits/artifact"
    )
    assert kubectl.get("service", "digits", namespace)["spec"]["ports"][0]["port"] == 8080
    assert kubectl.get("pdb", "digits", namespace)["spec"]["maxUnavailable"] == 1
    make_ready(kubelet, namespace, 2)
    ready = wait_for(lambda: (s := status(kubectl, namespace)).get("phase") == "Ready" and s, what="Ready")
    assert (ready["readyReplicas"], ready["desiredReplicas"]) == (2, 2)
    assert ready["model"]["producer"] == "TrainJob/digits"
    table = kubectl("get", "modelservices", namespace=namespace).stdout
    assert "Ready" in table and f"http://digits.{namespace}.svc:8080" in table

    # kubectl scale goes through the scale subresource to the Deployment.
    kubectl("scale", "modelservice", "digits", "--replicas=3", namespace=namespace)
    wait_for(lambda: kubectl.get("deployment", "digits", namespace)["spec"]["replicas"] == 3, what="scaled Deployment")

    # A retrained model rolls the Deployment forward.
    kubectl("delete", "trainjob", "digits", namespace=namespace)
    wait_for(lambda: not kubectl.exists("job", "digits", namespace), what="the old Job collected")
    kubectl.apply(TRAIN, namespace=namespace)
    train(kubectl, kubelet, namespace, "2026-11-29T12:00:00Z")
    wait_for(
        lambda: (
            kubectl.get("deployment", "digits", namespace)["spec"]["template"]["metadata"]["annotations"].get(
                "lmaas.io/artifact-created-at"
            )
            == "2026-11-29T12:00:00Z"
        ),
        what="rollout to the new artifact",
    )
    rolling = status(kubectl, namespace)
    assert rolling["phase"] in ("Deploying", "Ready")
    assert len(kubectl("get", "replicasets", "-l", PODS, "-o", "name", namespace=namespace).stdout.split()) == 2


def test_autoscaling_makes_an_hpa_and_turning_it_off_removes_it(operator, kubectl, kubelet, namespace):
    serve = doc(
        "ModelService",
        "digits",
        {"model": {"uri": "pvc://models/digits"}, "autoscaling": {"minReplicas": 1, "maxReplicas": 4}},
    )
    kubectl.apply(serve, namespace=namespace)
    hpa = wait_for(
        lambda: kubectl.exists("hpa", "digits", namespace) and kubectl.get("hpa", "digits", namespace), what="the HPA"
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "digits"}
    kubectl(
        "patch",
        "modelservice",
        "digits",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/autoscaling"}]',
        namespace=namespace,
    )
    wait_for(lambda: not kubectl.exists("hpa", "digits", namespace), what="the HPA removed")
    wait_for(lambda: not kubectl.exists("pdb", "digits", namespace), what="the budget removed (one replica)")


def test_children_deleted_or_edited_by_hand_are_restored(operator, kubectl, kubelet, namespace):
    kubectl.apply(
        doc("ModelService", "digits", {"model": {"uri": "pvc://models/digits"}, "replicas": 2}), namespace=namespace
    )
    wait_for(lambda: kubectl.exists("service", "digits", namespace), what="the Service")
    kubectl("delete", "service", "digits", namespace=namespace)
    wait_for(lambda: kubectl.exists("service", "digits", namespace), what="the Service restored")
    kubectl("scale", "deployment", "digits", "--replicas=7", namespace=namespace)
    wait_for(
        lambda: kubectl.get("deployment", "digits", namespace)["spec"]["replicas"] == 2, what="the Deployment restored"
    )
