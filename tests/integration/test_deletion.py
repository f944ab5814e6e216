"""Deleting resources: the operator puts no finalizer on them, so nothing waits for it.

A resource goes as soon as it is deleted, with or without the operator running; its children go
through their ownerReferences; its status timer stops; a namespace with lmaas resources in it can
be deleted under an operator that watches only that namespace (with kopf's finalizer it stayed
Terminating for ever: nolar/kopf#1088). A finalizer left by an older operator version is still
removed on deletion.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import wait_for
from tests.integration.operators import converged, resources

pytestmark = pytest.mark.integration


def gone(kubectl, namespace: str, kind: str, name: str) -> bool:
    return not kubectl.exists(kind, name, namespace)


def test_a_resource_has_no_finalizer_and_its_timer_stops_when_it_is_deleted(operators, kubectl, namespace):
    operator = operators()
    operator.env["LMAAS_NAMESPACE"] = namespace  # its timer counts are this test's resources' only
    operator.start()
    docs = resources(3)
    kubectl.apply(docs, namespace=namespace)
    wait_for(
        lambda: not converged(kubectl, namespace, docs),
        timeout=60,
        what="children and statuses",
        describe=lambda: converged(kubectl, namespace, docs),
    )
    for doc in docs:
        assert not kubectl.get(doc["kind"].lower(), doc["metadata"]["name"], namespace)["metadata"].get("finalizers")
    wait_for(
        lambda: operator.reconciles("refresh_trainjob_status") >= 1,
        timeout=30,
        what="the TrainJob's status timer to run",
    )

    kubectl("delete", "trainjob", "trainjob-0", "-n", namespace, "--wait=false")
    wait_for(lambda: gone(kubectl, namespace, "trainjob", "trainjob-0"), timeout=10, what="the TrainJob to go")
    wait_for(
        lambda: gone(kubectl, namespace, "job", "trainjob-0"),
        timeout=60,
        what="its Job to go with it (garbage collector)",
    )
    time.sleep(1)  # a timer call already under way when the TrainJob went
    calls = operator.reconciles("refresh_trainjob_status")
    time.sleep(3 * 3.0 + 1)  # three status intervals
    assert operator.reconciles("refresh_trainjob_status") == calls, "the status timer of a deleted TrainJob still runs"
    assert not converged(kubectl, namespace, docs[1:]), "the other resources were disturbed"


def test_resources_are_deleted_while_the_operator_is_down(operators, kubectl, namespace):
    operator = operators().start()
    docs = resources(3)
    kubectl.apply(docs, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, docs), timeout=60, what="children and statuses")
    operator.stop()
    started = time.monotonic()
    kubectl("delete", "trainjobs,compressjobs,modelservices", "--all", "-n", namespace, "--timeout=20s")
    assert time.monotonic() - started < 20
    assert not kubectl.json("get", "trainjobs,compressjobs,modelservices", "-n", namespace)["items"]


def test_a_namespace_is_deleted_under_an_operator_of_that_namespace(operators, kubectl, namespace, kubelet):
    operator = operators()
    operator.env.update({"LMAAS_NAMESPACE": namespace, "LMAAS_PEERING": ""})
    operator.start()
    docs = resources(6)
    kubectl.apply(docs, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, docs), timeout=60, what="children and statuses")
    kubectl("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: not kubectl.exists("namespace", namespace, None),
        timeout=90,
        interval=1,
        what=f"namespace {namespace} to be gone",
        describe=lambda: kubectl.json("get", "namespace", namespace).get("status"),
    )
    assert operator.process.poll() is None, "the operator died"


def test_a_finalizer_left_by_an_older_operator_is_removed_on_deletion(operators, kubectl, namespace):
    operators().start()
    doc = resources(1)[0]
    doc["metadata"]["finalizers"] = ["lmaas.io/finalizer"]
    kubectl.apply(doc, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, [doc]), timeout=60, what="children and status")
    kubectl("delete", "trainjob", doc["metadata"]["name"], "-n", namespace, "--wait=false")
    wait_for(
        lambda: gone(kubectl, namespace, "trainjob", doc["metadata"]["name"]),
        timeout=30,
        what="the operator to lift the old finalizer",
    )
