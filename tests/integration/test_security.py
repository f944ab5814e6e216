"""Security on the real API server: the operator works with exactly its RBAC and no more, every pod
it renders passes the `restricted` Pod Security Standard, and a serving token stays a secret."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from lmaas_operator.compressjob.builders import render_children as compress_children
from lmaas_operator.config import OperatorConfig
from lmaas_operator.modelservice.builders import render_children as service_children
from lmaas_operator.references import Resolution
from lmaas_operator.trainjob.builders import render_children as train_children
from tests.integration.conftest import REPO, wait_for
from tests.integration.operators import converged, resources
from tests.unit.operator.builders import stored

pytestmark = pytest.mark.integration
SERVICE_ACCOUNT = "system:serviceaccount:lmaas-system:lmaas-operator"
SAMPLES = REPO / "manifests" / "samples"


def service_account_kubeconfig(kubectl, kubeconfig: str, path: Path) -> str:
    """A kubeconfig that authenticates as the operator's ServiceAccount with a bound token."""
    token = kubectl("create", "token", "lmaas-operator", "-n", "lmaas-system", "--duration=1h").stdout.strip()
    config = yaml.safe_load(Path(kubeconfig).read_text())
    (cluster,) = config["clusters"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "lmaas-operator", "user": {"token": token}}],
                "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": "lmaas-operator"}}],
                "current-context": "operator",
            }
        )
    )
    return str(path)


def test_the_operator_reconciles_every_kind_with_only_its_rbac(operators, kubectl, kubeconfig, namespace, tmp_path):
    kubectl("apply", "-k", str(REPO / "manifests"))
    config = service_account_kubeconfig(kubectl, kubeconfig, tmp_path / "operator.kubeconfig")
    operator = operators(config=config).start()
    docs = resources(6)
    kubectl.apply(docs, namespace=namespace)
    wait_for(
        lambda: not converged(kubectl, namespace, docs),
        timeout=90,
        interval=1,
        what="the operator, as its ServiceAccount, to reconcile every kind",
        describe=lambda: converged(kubectl, namespace, docs),
    )
    # RBAC denials name the user; other 403s (say, an Event in a namespace other tests are
    # deleting) are not about permissions.
    refused = [line for line in operator.log.read_text().splitlines() if SERVICE_ACCOUNT in line and "cannot" in line]
    assert not refused, "\n".join(refused[:10])


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("patch", "jobs.batch", True),
        ("create", "deployments.apps", True),
        ("get", "pods/log", True),
        ("get", "secrets", False),
        ("list", "secrets", False),
        ("create", "pods", False),
        ("delete", "jobs.batch", True),
        ("get", "configmaps", False),
        ("create", "configmaps", False),  # the workers' config is in their pod template
        ("delete", "deployments.apps", False),
        ("delete", "trainjobs.lmaas.io", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", False),
        ("*", "*", False),
    ],
)
def test_the_operator_may_do_what_its_handlers_need_and_nothing_else(kubectl, verb, resource, allowed):
    kubectl("apply", "-k", str(REPO / "manifests"))
    answer = kubectl("auth", "can-i", verb, resource, "--as", SERVICE_ACCOUNT, "--all-namespaces", check=False)
    assert answer.stdout.strip() == ("yes" if allowed else "no"), answer.stdout + answer.stderr


def rendered_pod_templates() -> list[tuple[str, dict]]:
    config = OperatorConfig(worker_image="lmaas/worker:test", peering_priority=1)
    model = Resolution("ready", "ProducerSucceeded", "", uri="pvc://lmaas-artifacts/x/artifact", producer="TrainJob/x")
    found = []
    for sample in sorted(SAMPLES.glob("*.yaml")) + sorted((SAMPLES / "quickstart").glob("*.yaml")):
        doc = yaml.safe_load(sample.read_text())
        cr = stored(doc, namespace="ns", uid=str(uuid.uuid4()))
        if doc["kind"] == "TrainJob":
            children = train_children(cr, config)
        elif doc["kind"] == "CompressJob":
            children = compress_children(cr, config, model)
        else:
            children = service_children(cr, config, model)
        for child in children:
            if child["kind"] in ("Job", "Deployment"):
                found.append((f"{sample.name}: {child['kind']}", child["spec"]["template"]))
    return found


@pytest.mark.parametrize(("what", "template"), rendered_pod_templates(), ids=[w for w, _ in rendered_pod_templates()])
def test_every_rendered_pod_passes_the_restricted_standard_and_gets_no_api_token(kubectl, what, template):
    namespace = f"restricted-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "worker-dry-run"}, "spec": template["spec"]}
        out = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), namespace=namespace)
        assert "Warning" not in out.stderr, out.stderr
        # Workers never need the API: no token is mounted, and no service account is asked for.
        assert template["spec"]["automountServiceAccountToken"] is False
        assert "serviceAccountName" not in template["spec"]
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


def test_the_serving_token_never_reaches_the_operator_log_status_or_children(operators, kubectl, namespace):
    token = f"tok-{uuid.uuid4().hex}"
    kubectl("create", "secret", "generic", "serving-token", f"--from-literal=token={token}", "-n", namespace)
    operator = operators().start()
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "ModelService",
            "metadata": {"name": "guarded"},
            "spec": {
                "model": {"uri": "pvc://artifacts/m"},
                "auth": {"tokenSecretRef": {"name": "serving-token", "key": "token"}},
            },
        },
        namespace=namespace,
    )
    deployment = wait_for(
        lambda: kubectl.exists("deployment", "guarded", namespace) and kubectl.get("deployment", "guarded", namespace),
        what="the Deployment",
    )
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LMAAS_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "serving-token", "key": "token"}
    wait_for(
        lambda: (kubectl.get("modelservice", "guarded", namespace).get("status") or {}).get("phase"), what="a status"
    )
    everything = kubectl(
        "get", "modelservices,deployments,services,configmaps,events", "-n", namespace, "-o", "yaml"
    ).stdout
    assert token not in everything
    assert token not in operator.log.read_text()
