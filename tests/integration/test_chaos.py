"""Chaos on the real control plane: the operator SIGKILLed mid-reconcile, the API server restarted,
a standby replica taking over, resources deleted while they reconcile.

The operator runs as a real `lmaas operator` process here (not in-process), so it can be killed.
Every test is bounded in time and stops what it started. There is no kubelet: pods stay Pending,
so the statuses to expect are the ones before any pod runs.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import free_port, operator_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
LMAAS = str(Path(sys.executable).parent / "lmaas")

CHILDREN = {  # kind → (child kind, name suffix) that the operator makes before any pod runs
    "TrainJob": [("configmap", "-config"), ("service", ""), ("job", "")],
    "CompressJob": [("configmap", "-config"), ("job", "")],
    "ModelService": [("configmap", "-config"), ("deployment", ""), ("service", "")],
}
PEERING_LIFETIME = 15
PHASES = {"TrainJob": "Pending", "CompressJob": "Pending", "ModelService": "Deploying"}


class OperatorProcess:
    """`lmaas operator` as a child process with its own metrics port; killable."""

    def __init__(self, kubeconfig: str, peering: str, log: Path, priority: int = 0):
        self.env = {**os.environ, **operator_env(kubeconfig, peering), "LMAAS_LOG_FORMAT": "plain",
                    "LMAAS_PEERING_PRIORITY": str(priority), "LMAAS_PEERING_LIFETIME_SECONDS": str(PEERING_LIFETIME)}
        self.log = log
        self.process: subprocess.Popen | None = None
        self.metrics_url = ""

    def start(self) -> "OperatorProcess":
        port = free_port()
        self.env["LMAAS_METRICS_ADDRESS"] = f"127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        with self.log.open("a") as out:
            self.process = subprocess.Popen([LMAAS, "operator"], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def reconciles(self) -> float:
        """Handler calls this process made (0 until its metrics endpoint answers)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return 0.0
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "lmaas_operator_reconciles_total")


@pytest.fixture
def operators(kubeconfig, tmp_path):
    started: list[OperatorProcess] = []
    peering = f"lmaas-chaos-{uuid.uuid4().hex[:6]}"

    def make(priority: int = 0) -> OperatorProcess:
        process = OperatorProcess(kubeconfig, peering, tmp_path / f"operator-{len(started)}.log", priority)
        started.append(process)
        return process
    yield make
    for process in started:
        process.stop()


def resources(count: int) -> list[dict]:
    """A mix of the three kinds whose children do not depend on pods running."""
    made = []
    for number in range(count):
        kind = ("TrainJob", "CompressJob", "ModelService")[number % 3]
        name = f"{kind.lower()}-{number}"
        if kind == "TrainJob":
            spec = {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1 + number % 2}
        elif kind == "CompressJob":
            spec = {"model": {"uri": f"pvc://artifacts/models/{number}"}, "steps": [{"quantize": {"scheme": "int8"}}]}
        else:
            spec = {"model": {"uri": f"pvc://artifacts/models/{number}"}, "replicas": 1}
        made.append({"apiVersion": "lmaas.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
    return made


def converged(kubectl, namespace: str, docs: list[dict]) -> list[str]:
    """What is still wrong: missing or duplicated children, wrong owners, statuses not there yet."""
    wrong = []
    listed = {kind: kubectl.json("get", kind, "-n", namespace)["items"]
              for kind in ("configmap", "service", "job", "deployment")}
    stored = {(d["kind"], d["metadata"]["name"]): d
              for d in kubectl.json("get", "trainjobs,compressjobs,modelservices", "-n", namespace)["items"]}
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        body = stored.get((kind, name))
        if body is None:
            wrong.append(f"{kind}/{name} is gone")
            continue
        label = f"lmaas.io/{kind.lower()}"
        for child_kind, suffix in CHILDREN[kind]:
            owned = [c for c in listed[child_kind] if (c["metadata"].get("labels") or {}).get(label) == name]
            if [c["metadata"]["name"] for c in owned] != [name + suffix]:
                wrong.append(f"{kind}/{name}: {child_kind}s {[c['metadata']['name'] for c in owned]}")
            elif [o["uid"] for o in owned[0]["metadata"].get("ownerReferences", [])] != [body["metadata"]["uid"]]:
                wrong.append(f"{kind}/{name}: {child_kind} owned by {owned[0]['metadata'].get('ownerReferences')}")
        status = body.get("status") or {}
        if status.get("phase") != PHASES[kind] or status.get("observedGeneration") != body["metadata"]["generation"]:
            wrong.append(f"{kind}/{name}: status {status.get('phase')} observed {status.get('observedGeneration')}")
    return wrong


def test_fifty_resources_converge_exactly_through_ten_operator_kills(operators, kubectl, namespace):
    docs = resources(50)
    random.seed(7)
    operator = operators().start()
    batches = [docs[i::10] for i in range(10)]
    for kill, batch in enumerate(batches):
        kubectl.apply(batch, namespace=namespace)  # kills land while these reconcile
        time.sleep(random.uniform(0.5, 3.0))
        operator.kill()
        operator.start()
    wait_for(lambda: not converged(kubectl, namespace, docs), timeout=180, interval=2,
             what="every resource to have exactly its children and status after 10 kills",
             describe=lambda: converged(kubectl, namespace, docs)[:10])


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
    wait_for(lambda: not converged(kubectl, namespace, before + after), timeout=120, interval=2,
             what="resources created after the restart to be reconciled",
             describe=lambda: converged(kubectl, namespace, before + after))
    assert operator.process.poll() is None, "the operator restarted (or died) instead of reconnecting"


def test_only_the_leader_reconciles_and_the_standby_takes_over(operators, kubectl, namespace):
    leader = operators(priority=100).start()
    standby = operators(priority=50).start()
    first = resources(3)
    kubectl.apply(first, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, first), timeout=60, what="the leader to reconcile")
    wait_for(lambda: leader.reconciles() > 0, timeout=30, what="the leader's metrics")
    assert standby.reconciles() == 0, "the standby reconciled while the leader was alive"
    leader.kill()
    killed_at = time.monotonic()
    later = resources(6)[3:]
    kubectl.apply(later, namespace=namespace)
    wait_for(lambda: not converged(kubectl, namespace, later), timeout=PEERING_LIFETIME + 60, interval=1,
             what="the standby to take over", describe=lambda: converged(kubectl, namespace, later))
    took = time.monotonic() - killed_at
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
        left = kubectl.json("get", "trainjobs,compressjobs,modelservices,configmap,service,job,deployment",
                            "-n", namespace, "-l", "app.kubernetes.io/managed-by=lmaas-operator")["items"]
        left += kubectl.json("get", "trainjobs,compressjobs,modelservices", "-n", namespace)["items"]
        return [f"{i['kind']}/{i['metadata']['name']}" for i in left]
    wait_for(lambda: not leftovers(), timeout=120, interval=2, what="nothing left of deleted resources",
             describe=leftovers)
