"""Fixtures of the integration tier: a real control plane, kubectl as the client, the operator
in-process (kopf's KopfRunner), and a kubelet played by the tests (see kubelet.py).

LMAAS_TEST_KUBECONFIG=path runs the same tests against an existing cluster instead of the one
built from tests/cluster (it must have the CRDs of crds/ installed or installable).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from lmaas_operator.local.kubelet import free_port
from tests.cluster import TestCluster
from tests.integration.kubelet import Kubelet

REPO = Path(__file__).resolve().parents[2]


class Kubectl:
    """The real kubectl against the test cluster."""

    def __init__(self, kubeconfig: str, env: dict[str, str] | None = None):
        self.env = {**os.environ, **(env or {}), "KUBECONFIG": kubeconfig}

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, namespace: str | None = None
    ) -> subprocess.CompletedProcess:
        argv = ["kubectl", *(["-n", namespace] if namespace else []), *args]
        result = subprocess.run(argv, input=input, env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def apply(self, docs: Any, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(docs if isinstance(docs, list) else [docs])
        return self("apply", "-f", "-", input=text, namespace=namespace, check=check)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return json.loads(self("get", kind, name, "-o", "json", namespace=namespace).stdout)

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self(*args, "-o", "json").stdout)

    def exists(self, kind: str, name: str, namespace: str) -> bool:
        return self("get", kind, name, "--ignore-not-found", "-o", "name", namespace=namespace).stdout.strip() != ""

    def events(self, kind: str, name: str, namespace: str) -> list[tuple[str, str]]:
        """(type, message) of the Events about one object, as `kubectl describe` shows them."""
        return [
            (e["type"], e["message"])
            for e in self.json("get", "events", "-n", namespace)["items"]
            if (e["involvedObject"].get("kind"), e["involvedObject"].get("name")) == (kind, name)
        ]


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.25,
    what: str = "condition",
    describe: Callable[[], Any] | None = None,
) -> Any:
    """Poll until `condition()` is truthy and return it; on timeout, say `what` and `describe()`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except AssertionError as error:  # kubectl said no (yet)
            last_error, value = error, None
        if value:
            return value
        time.sleep(interval)
    detail = f"; still: {describe()}" if describe else ""
    raise TimeoutError(
        f"timed out after {timeout}s waiting for {what}"
        + (f"; last error: {last_error}" if last_error else "")
        + detail
    )


@pytest.fixture(scope="session")
def cluster():
    """(kubeconfig path, TestCluster or None); the CRDs are installed."""
    external = os.environ.get("LMAAS_TEST_KUBECONFIG")
    if external:
        Kubectl(external)("apply", "--server-side", "-k", str(REPO / "crds"))
        yield external, None
        return
    with TestCluster() as test_cluster:
        yield str(test_cluster.kubeconfig), test_cluster


@pytest.fixture(scope="session")
def kubeconfig(cluster) -> str:
    return cluster[0]


@pytest.fixture(scope="session")
def kubectl(cluster) -> Kubectl:
    kubeconfig, test_cluster = cluster
    # The test cluster's env keeps kubectl's discovery cache in its own temp dir.
    return Kubectl(kubeconfig, test_cluster.env() if test_cluster else None)


@pytest.fixture(scope="session")
def api(kubeconfig) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def kubelet(cluster, api):
    _, test_cluster = cluster
    if test_cluster is None:
        pytest.skip("the kubelet is played only on the test control plane; a real cluster has its own")
    player = Kubelet(
        api, test_cluster.dir / "pki" / "apiserver.crt", test_cluster.dir / "pki" / "apiserver.key"
    ).start()
    yield player
    player.stop()


@pytest.fixture
def namespace(kubectl):
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    # Pods cannot be created before the namespace's default ServiceAccount exists.
    wait_for(lambda: kubectl.exists("serviceaccount", "default", name), what="the default ServiceAccount")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def operator_env(kubeconfig: str, peering: str, metrics_address: str = "") -> dict[str, str]:
    """The operator's configuration for tests: LMAAS_* variables, as in a Deployment."""
    return {
        "LMAAS_METRICS_ADDRESS": metrics_address,
        "KUBECONFIG": kubeconfig,
        "LMAAS_PEERING": peering,
        "LMAAS_LIVENESS_ENDPOINT": "",
        "LMAAS_WORKER_IMAGE": "lmaas/worker:test",
        "LMAAS_ARTIFACT_CLAIM": "artifacts",
        "LMAAS_WATCH_TIMEOUT_SECONDS": "60",
    }


@pytest.fixture(scope="module")
def operator(kubeconfig):
    """The operator, in-process with kopf's KopfRunner, for one test module: modules that start
    operators of their own never overlap with it."""
    from kopf.testing import KopfRunner

    saved = dict(os.environ)
    metrics_port = free_port()
    os.environ.update(operator_env(kubeconfig, f"lmaas-test-{uuid.uuid4().hex[:6]}", f"127.0.0.1:{metrics_port}"))
    try:
        with KopfRunner(["run", "--all-namespaces", "-m", "lmaas_operator.main"], timeout=60) as runner:
            runner.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            yield runner
        assert runner.exception is None, runner.output
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def operators(kubeconfig, tmp_path):
    """make(priority=0, config=None) → a new operator process (not started; `config`: another kubeconfig); all are stopped after."""
    from tests.integration.operators import OperatorProcess

    started: list[OperatorProcess] = []
    peering = f"lmaas-chaos-{uuid.uuid4().hex[:6]}"

    def make(priority: int = 0, config: str | None = None) -> OperatorProcess:
        process = OperatorProcess(config or kubeconfig, peering, tmp_path / f"operator-{len(started)}.log", priority)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()
