"""The API as the real API server serves it: CRDs, CEL rules, printer columns, Pod Security,
garbage collection, namespace deletion, and the operator starting against it."""

import json
import uuid

import pytest
import yaml

from tests.integration.conftest import REPO, operator_env, wait_for
from tests.unit.corpus import invalid_cases

pytestmark = pytest.mark.integration
CASES = invalid_cases()


def test_the_install_manifests_apply(kubectl):
    out = kubectl("apply", "-k", str(REPO / "manifests"))
    assert "deployment.apps/lmaas-operator" in out.stdout
    assert kubectl.exists("serviceaccount", "lmaas-operator", "lmaas-system")


def test_every_sample_applies(kubectl, namespace):
    """The single-kind samples together; each pipeline folder on its own, as it is meant to be applied."""
    samples = REPO / "manifests" / "samples"
    out = kubectl("apply", "-f", str(samples), namespace=namespace)
    assert out.stdout.count("created") == len(list(samples.glob("*.yaml")))
    names = kubectl("get", "lmaas", "-o", "name", namespace=namespace).stdout.split()
    assert "trainjob.lmaas.io/digits-mlp" in names and "modelservice.lmaas.io/digits-mlp-small" in names
    for folder in sorted(p for p in samples.iterdir() if p.is_dir()):
        own = f"{folder.name}-{uuid.uuid4().hex[:6]}"
        kubectl("create", "namespace", own)
        try:
            out = kubectl("apply", "-f", str(folder), namespace=own)
            assert out.stdout.count("created") == len(list(folder.glob("*.yaml"))), out.stdout
        finally:
            kubectl("delete", "namespace", own, "--wait=false")


def test_the_operator_pod_passes_the_restricted_pod_security_standard(kubectl):
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
        rendered = yaml.safe_load_all(kubectl("kustomize", str(REPO / "manifests")).stdout)
        (deployment,) = [d for d in rendered if d and d["kind"] == "Deployment"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "operator-dry-run"},
            "spec": deployment["spec"]["template"]["spec"],
        }
        pod["spec"]["serviceAccountName"] = "default"
        out = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), namespace=namespace)
        assert "Warning" not in out.stderr, out.stderr
        # The check has teeth: privilege escalation is refused in the same namespace.
        pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        refused = kubectl(
            "apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), namespace=namespace, check=False
        )
        assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_api_server_rejects_each_invalid_manifest_naming_the_field(kubectl, namespace, case):
    for doc in case.documents[:-1]:
        kubectl.apply(doc, namespace=namespace)
    result = kubectl.apply(case.documents[-1], namespace=namespace, check=False)
    assert result.returncode != 0, f"{case.name} was accepted"
    assert case.message in result.stderr, result.stderr
    if case.field:
        assert case.field in result.stderr, result.stderr


def test_kubectl_get_shows_the_printer_columns(kubectl, namespace):
    kubectl("apply", "-f", str(REPO / "manifests" / "samples" / "pipeline"), namespace=namespace)
    headers = {
        "trainjobs": ["NAME", "PHASE", "NODES", "PROGRESS", "LOSS", "AGE"],
        "compressjobs": ["NAME", "PHASE", "STEPS", "SIZE-RATIO", "ACC-DELTA", "AGE"],
        "modelservices": ["NAME", "PHASE", "READY", "DESIRED", "MODEL", "URL", "AGE"],
    }
    for plural, columns in headers.items():
        out = kubectl("get", plural, namespace=namespace).stdout
        assert out.splitlines()[0].split() == columns, out
    wide = kubectl("get", "tj", "-o", "wide", namespace=namespace).stdout.splitlines()[0].split()
    assert wide[-3:] == ["STRATEGY", "REASON", "ARTIFACT"]
    everything = kubectl("get", "lmaas", namespace=namespace).stdout
    assert (
        "trainjob.lmaas.io/digits" in everything
        and "compressjob.lmaas.io/digits-int8" in everything
        and "modelservice.lmaas.io/digits" in everything
    )


def test_kubectl_explain_teaches_the_api(kubectl):
    out = kubectl("explain", "trainjob.spec").stdout
    assert "procsPerNode" in out and "Training processes per node" in out
    out = kubectl("explain", "compressjob.spec.steps.distill.alpha").stdout
    assert "Weight of the distillation term" in out


def test_kubectl_scale_reaches_a_modelservice(kubectl, namespace):
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "ModelService",
            "metadata": {"name": "m"},
            "spec": {"model": {"uri": "pvc://a/b"}},
        },
        namespace=namespace,
    )
    kubectl("scale", "modelservice", "m", "--replicas=3", namespace=namespace)
    assert kubectl.get("modelservice", "m", namespace)["spec"]["replicas"] == 3


def test_owner_references_garbage_collect_children(kubectl, namespace):
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "owner"},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}},
        },
        namespace=namespace,
    )
    owner = kubectl.get("trainjob", "owner", namespace)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {
                        "apiVersion": "lmaas.io/v1alpha1",
                        "kind": "TrainJob",
                        "name": "owner",
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {"a": "b"},
        },
        namespace=namespace,
    )
    kubectl("delete", "trainjob", "owner", namespace=namespace)
    wait_for(lambda: not kubectl.exists("configmap", "child", namespace), what="the garbage collector")


def test_deleting_a_namespace_with_custom_resources_completes(kubectl):
    namespace = f"doomed-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("apply", "-f", str(REPO / "manifests" / "samples" / "pipeline"), namespace=namespace)
    kubectl("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: kubectl("get", "namespace", namespace, check=False).returncode != 0,
        timeout=60,
        what="the namespace controller",
    )


def test_the_operator_starts_takes_leadership_and_observes_each_kind(kubeconfig, kubectl, namespace, monkeypatch):
    from kopf.testing import KopfRunner

    peering = f"lmaas-start-{uuid.uuid4().hex[:6]}"
    for key, value in operator_env(kubeconfig, peering).items():
        monkeypatch.setenv(key, value)
    docs = [
        d for d in yaml.safe_load_all((REPO / "manifests" / "samples" / "pipeline" / "20-compress.yaml").read_text())
    ]
    docs += [d for d in yaml.safe_load_all((REPO / "manifests" / "samples" / "pipeline" / "30-serve.yaml").read_text())]
    docs += [
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "observed"},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "suspend": True},
        }
    ]
    with KopfRunner(["run", "--all-namespaces", "-m", "lmaas_operator.main"], timeout=60) as runner:
        kubectl.apply(docs, namespace=namespace)
        for kind, name in (("trainjob", "observed"), ("compressjob", "digits-int8"), ("modelservice", "digits")):
            wait_for(
                lambda kind=kind, name=name: (
                    kubectl.get(kind, name, namespace).get("status", {}).get("observedGeneration") == 1
                ),
                what=f"{kind} {name} observed",
            )
        # Leadership: the operator announced itself in the peering object it created.
        peers = kubectl.get("clusterkopfpeering", peering)
        assert peers.get("status"), peers
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0
