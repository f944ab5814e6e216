"""Bad input that only runtime can tell: the resource says why in its status, and the operator
goes on serving every other resource."""

import pytest

from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def status(kubectl, kind, name, namespace):
    return kubectl.get(kind, name, namespace).get("status") or {}


def wait_reason(kubectl, kind, name, namespace, phase, reason, timeout=45):
    return wait_for(
        lambda: (s := status(kubectl, kind, name, namespace)).get("phase") == phase and s.get("reason") == reason and s,
        timeout=timeout,
        what=f"{kind} {name} {phase}/{reason}",
        describe=lambda: status(kubectl, kind, name, namespace),
    )


def compressjob(name, **model):
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "CompressJob",
        "metadata": {"name": name},
        "spec": {"model": model, "steps": [{"quantize": {"scheme": "int8"}}]},
    }


def test_a_child_the_api_server_refuses_fails_the_resource_and_others_still_reconcile(operator, kubectl, namespace):
    # The CRD passes pod.affinity through unchecked (it is Kubernetes' own, large type); the API
    # server checks it on the Job. The TrainJob then says so, instead of retrying for ever.
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "odd-affinity"},
            "spec": {
                "model": {"builtin": "mlp"},
                "dataset": {"builtin": "digits"},
                "pod": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Near"}]}]
                            }
                        }
                    }
                },
            },
        },
        namespace=namespace,
    )
    failed = wait_reason(kubectl, "trainjob", "odd-affinity", namespace, "Failed", "ChildRejected")
    assert "the API server refused the Job odd-affinity" in failed["message"]
    assert "operator" in failed["message"] and "Near" in failed["message"]
    assert not kubectl.exists("job", "odd-affinity", namespace)
    # and `kubectl describe` says so too
    wait_for(
        lambda: [
            m
            for kind, m in kubectl.events("TrainJob", "odd-affinity", namespace)
            if kind == "Error" and "the API server refused the Job odd-affinity" in m
        ],
        what="an Event",
    )
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "fine"},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}},
        },
        namespace=namespace,
    )
    wait_for(lambda: kubectl.exists("job", "fine", namespace), what="the next TrainJob's Job")
    # The refusal stays (the status timer does not paper over it) until the spec changes.
    assert status(kubectl, "trainjob", "odd-affinity", namespace)["reason"] == "ChildRejected"


def test_dangling_references_wait_naming_the_producer_and_cycles_fail(operator, kubectl, namespace):
    kubectl.apply(compressjob("orphan", fromTrainJob="never-created"), namespace=namespace)
    waiting = wait_reason(kubectl, "compressjob", "orphan", namespace, "Waiting", "ProducerNotFound")
    assert "TrainJob/never-created" in waiting["message"]
    kubectl.apply(
        [compressjob("left", fromCompressJob="right"), compressjob("right", fromCompressJob="left")],
        namespace=namespace,
    )
    cycle = wait_reason(kubectl, "compressjob", "left", namespace, "Failed", "ReferenceCycle")
    assert "CompressJob/left -> CompressJob/right -> CompressJob/left" in cycle["message"]
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "ModelService",
            "metadata": {"name": "on-a-cycle"},
            "spec": {"model": {"fromCompressJob": "left"}},
        },
        namespace=namespace,
    )
    served = wait_for(
        lambda: (
            status(kubectl, "modelservice", "on-a-cycle", namespace).get("phase") == "Failed"
            and status(kubectl, "modelservice", "on-a-cycle", namespace)
        ),
        what="the ModelService to fail",
    )
    assert served["reason"] in ("ProducerFailed", "ReferenceCycle"), served
