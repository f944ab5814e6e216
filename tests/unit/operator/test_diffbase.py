"""The operator's diff-base storage builds exactly kopf's essence (what decides that a spec changed),
only without copying what kopf throws away."""
import copy

import kopf
import pytest

from lmaas_operator.main import SlimDiffBaseStorage

KEY = dict(prefix="lmaas.io", key="last-handled-configuration")


def trainjob() -> dict:
    return {
        "apiVersion": "lmaas.io/v1alpha1", "kind": "TrainJob",
        "metadata": {
            "name": "digits", "namespace": "ml", "uid": "u-1", "generation": 3, "resourceVersion": "981",
            "labels": {"team": "vision"},
            "annotations": {"lmaas.io/last-handled-configuration": '{"spec": {"nodes": 1}}', "owner": "ana",
                            "kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["lmaas.io/finalizer"],
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {"f:nodes": {}}}}],
        },
        "spec": {"nodes": 2, "model": {"builtin": "mlp", "hidden": [128, 64]}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def replica_set() -> dict:
    """The one kind kopf names its annotation differently for (owned by a Deployment)."""
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "serve-5d8", "annotations": {"lmaas.io/last-handled-configuration-ofDRS": "{}"},
                         "ownerReferences": [{"kind": "Deployment", "name": "serve", "uid": "u-2"}]},
            "spec": {"replicas": 2}}


@pytest.mark.parametrize("body", [trainjob(), replica_set()], ids=["TrainJob", "ReplicaSet"])
@pytest.mark.parametrize("extra_fields", [None, set(), {("spec",)}, {("status", "phase")},
                                          {("metadata", "finalizers")}])
def test_the_essence_is_kopfs(body, extra_fields):
    ours = SlimDiffBaseStorage(**KEY).build(body=kopf.Body(copy.deepcopy(body)), extra_fields=extra_fields)
    kopfs = kopf.AnnotationsDiffBaseStorage(**KEY).build(body=kopf.Body(copy.deepcopy(body)),
                                                         extra_fields=extra_fields)
    assert ours == kopfs


def test_a_spec_edit_is_a_change_and_a_status_write_is_not():
    storage = SlimDiffBaseStorage(**KEY)
    before = storage.build(body=kopf.Body(trainjob()))
    status_written = trainjob()
    status_written["status"]["phase"] = "Succeeded"
    status_written["metadata"]["resourceVersion"] = "990"
    assert storage.build(body=kopf.Body(status_written)) == before
    edited = trainjob()
    edited["spec"]["nodes"] = 4
    assert storage.build(body=kopf.Body(edited)) != before


def test_the_body_is_not_changed():
    body = trainjob()
    SlimDiffBaseStorage(**KEY).build(body=kopf.Body(body))
    assert body == trainjob()
