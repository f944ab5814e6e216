"""Operators as real `lmaas operator` processes, and the resources and convergence checks that the
chaos and security tests share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import free_port, operator_env

LMAAS = str(Path(sys.executable).parent / "lmaas")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """A Prometheus endpoint's samples by (name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


CHILDREN = {  # kind → (child kind, name suffix) that the operator makes before any pod runs
    "TrainJob": [("service", ""), ("job", "")],
    "CompressJob": [("job", "")],
    "ModelService": [("deployment", ""), ("service", "")],
}
PEERING_LIFETIME = 15
PHASES = {"TrainJob": "Pending", "CompressJob": "Pending", "ModelService": "Deploying"}


class OperatorProcess:
    """`lmaas operator` as a child process with its own metrics port; killable."""

    def __init__(self, kubeconfig: str, peering: str, log: Path, priority: int = 0):
        self.env = {
            **os.environ,
            **operator_env(kubeconfig, peering),
            "LMAAS_LOG_FORMAT": "plain",
            "LMAAS_PEERING_PRIORITY": str(priority),
            "LMAAS_PEERING_LIFETIME_SECONDS": str(PEERING_LIFETIME),
        }
        self.log = log
        self.process: subprocess.Popen | None = None
        self.metrics_url = ""

    def start(self) -> OperatorProcess:
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

    def answers(self) -> bool:
        """Whether its metrics endpoint answers (set up at start-up, before peering decides)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5):
                return True
        except OSError:
            return False

    def reconciles(self, handler: str | None = None) -> float:
        """Handler calls this process made, of one handler or all (0 until its metrics endpoint answers)."""
        try:
            samples = scrape(self.metrics_url)
        except OSError:
            return 0.0
        return sum(
            count
            for (name, labels), count in samples.items()
            if name == "lmaas_operator_reconciles_total" and handler in (None, dict(labels).get("handler"))
        )


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
    listed = {kind: kubectl.json("get", kind, "-n", namespace)["items"] for kind in ("service", "job", "deployment")}
    stored = {
        (d["kind"], d["metadata"]["name"]): d
        for d in kubectl.json("get", "trainjobs,compressjobs,modelservices", "-n", namespace)["items"]
    }
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
