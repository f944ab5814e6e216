"""lmaas_operator.modelservice.builders: a ModelService's children, tested as data."""

import pytest

from lmaas_api import contract
from lmaas_operator.config import OperatorConfig
from lmaas_operator.modelservice.builders import render_children, unwanted_children
from lmaas_operator.references import Resolution
from tests.unit.corpus import sample_documents
from tests.unit.operator.builders import assert_valid_kubernetes, projected_config, stored

CONFIG = OperatorConfig(worker_image="w:1", peering_priority=1)
MODEL = Resolution(
    "ready",
    "ProducerSucceeded",
    "",
    uri="pvc://artifacts/compressjobs/ml/small/artifact",
    producer="CompressJob/small",
    created_at="2026-11-29T10:00:00Z",
)
SERVE = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "ModelService",
    "metadata": {"name": "digits"},
    "spec": {"model": {"fromCompressJob": "small"}, "replicas": 2},
}


def by_kind(children):
    return {c["kind"]: c for c in children}


def with_spec(**spec):
    return {**SERVE, "spec": {**SERVE["spec"], **spec}}


@pytest.mark.parametrize(
    "doc", [d for _, d in sample_documents() if d["kind"] == "ModelService"], ids=lambda d: d["metadata"]["name"]
)
def test_children_of_every_sample_are_valid_kubernetes_objects(doc):
    assert_valid_kubernetes(*render_children(stored(doc), CONFIG, MODEL))


def test_a_deployment_service_and_budget_for_two_replicas():
    children = by_kind(render_children(stored(SERVE), CONFIG, MODEL))
    assert set(children) == {"Deployment", "Service", "PodDisruptionBudget"}
    deployment = children["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["model"]["readOnly"] is True
    assert pod["automountServiceAccountToken"] is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[contract.INPUT_DIR_ENV] == "/var/lib/lmaas/volumes/artifacts/compressjobs/ml/small/artifact"
    service = children["Service"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8080


def test_autoscaling_makes_an_hpa_and_leaves_replicas_to_it():
    children = by_kind(
        render_children(
            stored(with_spec(autoscaling={"minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60})),
            CONFIG,
            MODEL,
        )
    )
    assert "replicas" not in children["Deployment"]["spec"]
    hpa = children["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 5)
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    assert hpa["scaleTargetRef"]["name"] == "digits"


def test_one_replica_gets_no_budget_and_unwanted_children_are_named():
    cr = stored(with_spec(replicas=1))
    assert {c["kind"] for c in render_children(cr, CONFIG, MODEL)} == {"Deployment", "Service"}
    assert [k for _, k, _ in unwanted_children(cr)] == ["HorizontalPodAutoscaler", "PodDisruptionBudget"]


def test_the_token_comes_from_the_secret_never_from_the_spec():
    deployment = by_kind(render_children(stored(with_spec(auth={"tokenSecretRef": {"name": "tok"}})), CONFIG, MODEL))[
        "Deployment"
    ]
    (token,) = [
        e
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == contract.AUTH_TOKEN_ENV
    ]
    assert token == {"name": contract.AUTH_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": "tok", "key": "token"}}}


def test_a_newer_artifact_or_a_spec_change_changes_the_pod_template():
    template = lambda cr, model: by_kind(render_children(cr, CONFIG, model))["Deployment"]["spec"]["template"]
    base = template(stored(SERVE), MODEL)
    newer = Resolution("ready", "", "", uri=MODEL.uri, producer=MODEL.producer, created_at="2026-11-30T10:00:00Z")
    assert template(stored(SERVE), newer) != base
    assert template(stored(with_spec(batching={"maxBatchSize": 8})), MODEL) != base
    assert template(stored(SERVE), MODEL) == base
    scaled = stored(with_spec(replicas=5), generation=2)  # kubectl scale bumps the generation
    assert template(scaled, MODEL) == base  # scaling rolls nothing
    autoscaled = with_spec(autoscaling={"minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60})
    assert template(stored(autoscaled, generation=3), MODEL) == base


def test_the_server_reads_the_modelservice_from_its_pod_template():
    doc = with_spec(batching={"maxBatchSize": 8}, pod={"annotations": {"lmaas.io/config": "mine"}})
    template = by_kind(render_children(stored(doc, uid="u"), CONFIG, MODEL))["Deployment"]["spec"]["template"]
    document = projected_config(template)  # the operator's annotation wins over the pod's own
    assert document["metadata"] == {"name": "digits", "namespace": "ml", "uid": "u"}
    assert document["spec"]["batching"]["maxBatchSize"] == 8
    assert "replicas" not in document["spec"]
