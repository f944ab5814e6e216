"""Chaos on the real control plane: the operator SIGKILLed mid-reconcile, the API server restarted,
a standby replica taking over, resources deleted while they reconcile.

The operator runs as a real `lmaas operator` process here (not in-process), so it can be killed.
Every test is bounded in time and stops what it started. There is no kubelet: pods stay Pending,
so the statuses to expect are the ones before any pod runs.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.conftest import wait_for
from tests.integration.operators import PEERING_LIFETIME, converged, resources

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_fifty_resources_converge_exactly_through_ten_operator_kills(operators, kubectl, namespace):
    docs = resources(50)
    random.seed(7)
    operator = operators().start()
    batches = [docs[i::10] for i in range(10)]
    for batch in batches:
        kubectl.apply(batch, namespace=namespace)  # kills land while these reconcile
        time.sleep(random.uniform(0.5, 3.0))
        operator.kill()
        operator.start()
    wait_for(
        lambda: not converged(kubectl, namespace, docs),
        timeout=180,
        interval=2,
        what="every resource to have exactly its children and status after 10 kills",
        describe=lambda: converged(kubectl, namespace, docs)[:10],
    )


def test_the_operator_reconnects_after_the_api_server_restarts(operators, cluster, kubectl, namespace):
    _, cluster = cluster
    if cluster is None:
        pytest.skip("an external cluster (LMAAS_TEST_KUBECONFIG): its API server is not ours to restart")
    operator = operators().start()
    before, after = resources(6)[:3], resources(6)[3:]
    for doc in after:
        doc["metadata"]["name"] += "-after"
    kubectl.apply(before, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, before), timeout=60, what="the first resources")
    cluster.stop_apiserver()
    time.sleep(5)  # the operator's watches and requests fail meanwhile
    cluster.start_apiserver()
    kubectl.apply(after, namespace=namespace)
    wait_for(
        lambda: not converged(kubectl, namespace, before + after),
        timeout=120,
        interval=2,
        what="resources created after the restart to be reconciled",
        describe=lambda: converged(kubectl, namespace, before + after),
    )
    assert operator.process.poll() is None, "the operator restarted (or died) instead of reconnecting"


def test_only_the_leader_reconciles_and_the_standby_takes_over(operators, kubectl, namespace):
    leader = operators(priority=100).start()
    # The standby joins a running leader (started together, both may act for a moment before
    # either has seen the other's peering record).
    wait_for(lambda: leader.answers(), timeout=30, what="the leader to be up")
    time.sleep(2)
    standby = operators(priority=50).start()
    wait_for(lambda: standby.answers(), timeout=30, what="the standby to be up")
    first = resources(3)
    kubectl.apply(first, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, first), timeout=60, what="the leader to reconcile")
    wait_for(lambda: leader.reconciles() > 0, timeout=30, what="the leader's metrics")
    assert standby.reconciles() == 0, "the standby reconciled while the leader was alive"
    leader.kill()
    killed_at = time.monotonic()
    later = resources(6)[3:]
    kubectl.apply(later, namespace=namespace)
    wait_for(
        lambda: not converged(kubectl, namespace, later),
        timeout=PEERING_LIFETIME + 60,
        interval=1,
        what="the standby to take over",
        describe=lambda: converged(kubectl, namespace, later),
    )
    took = time.monotonic() - killed_at
    print(f"the standby took over {took:.1f} s after the leader was killed")  # shown with pytest -s
    assert standby.reconciles() > 0
    # kopf peering: a SIGKILLed leader's record expires after its lifetime, then the standby resumes.
    assert took < PEERING_LIFETIME + 30, f"takeover took {took:.0f} s"


def test_resources_deleted_mid_reconcile_leave_nothing_behind(operators, kubectl, namespace):
    operators().start()
    docs = resources(12)
    kubectl.apply(docs, namespace=namespace)
    time.sleep(0.5)
    kubectl("delete", "trainjobs,compressjobs,modelservices", "--all", "-n", namespace, "--wait=false")

    def leftovers():
        left = kubectl.json(
            "get",
            "trainjobs,compressjobs,modelservices,service,job,deployment",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/managed-by=lmaas-operator",
        )["items"]
        left += kubectl.json("get", "trainjobs,compressjobs,modelservices", "-n", namespace)["items"]
        return [f"{i['kind']}/{i['metadata']['name']}" for i in left]

    wait_for(
        lambda: not leftovers(), timeout=120, interval=2, what="nothing left of deleted resources", describe=leftovers
    )
