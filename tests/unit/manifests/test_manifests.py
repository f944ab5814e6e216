"""manifests/ and crds/: what `kubectl apply -k manifests` installs, checked offline."""

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from lmaas_api.crds import load_crds
from tests.unit.corpus import REPO

KUBERNETES_VERSION = "1.37.0"


@pytest.fixture(scope="module")
def rendered():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render manifests/ (kubectl kustomize)")
    out = subprocess.run([kubectl, "kustomize", str(REPO / "manifests")], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_kustomize_renders_the_operator_install(rendered):
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in rendered)
    assert kinds == [
        "ClusterRole/lmaas-operator",
        "ClusterRoleBinding/lmaas-operator",
        "CustomResourceDefinition/clusterkopfpeerings.kopf.dev",
        "CustomResourceDefinition/compressjobs.lmaas.io",
        "CustomResourceDefinition/kopfpeerings.kopf.dev",
        "CustomResourceDefinition/modelservices.lmaas.io",
        "CustomResourceDefinition/trainjobs.lmaas.io",
        "Deployment/lmaas-operator",
        "Namespace/lmaas-system",
        "ServiceAccount/lmaas-operator",
    ]


def test_every_rendered_object_is_valid_under_the_official_schemas(rendered):
    for doc in rendered:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_would_catch_a_broken_manifest(rendered):
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_rbac_has_no_wildcards(rendered):
    (role,) = [d for d in rendered if d["kind"] == "ClusterRole"]
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert "*" not in rule.get(key, []), f"wildcard in {key}: {rule}"
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_rbac_grants_no_access_to_secrets_and_deletes_only_optional_children_and_finished_jobs(rendered):
    (role,) = [d for d in rendered if d["kind"] == "ClusterRole"]
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert not [x for x in granted if x[1] == "secrets"]
    deletes = {x[1] for x in granted if x[2] in ("delete", "deletecollection")}
    # The optional children a ModelService can stop asking for, and the Job of a finished TrainJob
    # or CompressJob (ttlSecondsAfterFinished); the rest go by garbage collection.
    assert deletes == {"horizontalpodautoscalers", "poddisruptionbudgets", "jobs"}


def test_operator_pod_is_restricted(rendered):
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["limits"]["memory"]
    (namespace,) = [d for d in rendered if d["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _walk_properties(schema, path):
    for key, prop in schema.get("properties", {}).items():
        yield f"{path}.{key}", prop
        yield from _walk_properties(prop, f"{path}.{key}")
    if "items" in schema:
        yield from _walk_properties(schema["items"], f"{path}[]")


@pytest.mark.parametrize("kind", ["TrainJob", "CompressJob", "ModelService"])
def test_every_field_has_a_description_for_kubectl_explain(kind):
    schema = load_crds()[kind].schema
    missing = [
        p for p, prop in _walk_properties(schema, kind) if not prop.get("description") and not p.endswith(".metadata")
    ]
    assert missing == []


@pytest.mark.parametrize("kind", ["TrainJob", "CompressJob", "ModelService"])
def test_printer_columns_point_at_fields_that_exist(kind):
    crd = load_crds()[kind]
    for column in crd.printer_columns:
        node = crd.schema
        parts = column["jsonPath"].lstrip(".").split(".")
        if parts[0] == "metadata":
            continue
        for part in parts:
            node = node["properties"][part]
        assert node["type"] == column["type"] or (column["type"] == "date" and node.get("format") == "date-time")


def test_crds_share_a_category_and_have_distinct_short_names():
    crds = load_crds().values()
    assert all(c.body["spec"]["names"]["categories"] == ["lmaas"] for c in crds)
    short = [s for c in crds for s in c.short_names]
    assert len(short) == len(set(short)) == 3
    # Kubernetes' own short names must not be shadowed (cj is CronJob).
    assert not set(short) & {"cj", "deploy", "svc", "po", "hpa", "pdb", "cm", "ns"}
    scale = load_crds()["ModelService"].body["spec"]["versions"][0]["subresources"]["scale"]
    assert scale["specReplicasPath"] == ".spec.replicas"
