"""Which watch events kopf hands to the operator's event handlers.

Every event of a child (pods aside) and of a custom resource goes through kopf; a handler that can
only act on some of them says which in its filter, so that kopf calls it for those alone (each call
costs kwargs, a context and an outcome: a share of the operator's CPU in `python -m bench.operator
--profile`). What the handlers then do is tested against the API server in tests/integration.
"""

import logging

import kopf
import pytest
from kopf._core.intents import causes

import lmaas_operator.main  # noqa: F401  (registers the handlers)
from lmaas_api.crds import GROUP, VERSION

JOBS = kopf.Resource("batch", "v1", "jobs", kind="Job", namespaced=True)
SERVICES = kopf.Resource("", "v1", "services", kind="Service", namespaced=True)
DEPLOYMENTS = kopf.Resource("apps", "v1", "deployments", kind="Deployment", namespaced=True)
TRAINJOBS = kopf.Resource(GROUP, VERSION, "trainjobs", kind="TrainJob", namespaced=True)


def called(resource: kopf.Resource, event_type: str, body: dict, memo: dict | None = None) -> set[str]:
    """The ids of the event handlers kopf calls for this event."""
    body = kopf.Body(body)
    cause = causes.detect_watching_cause(
        raw_event={"type": event_type, "object": body},
        body=body,
        resource=resource,
        indices={},
        logger=logging.getLogger("test"),
        patch=kopf.Patch(),
        memo=kopf.Memo(memo or {}),
    )
    return {handler.id for handler in kopf.get_default_registry()._watching.get_handlers(cause=cause)}


def child(kind: str, label: str, generation: int | None = None) -> dict:
    meta = {"name": "digits", "namespace": "ml", "labels": {label: "digits"}}
    if generation is not None:
        meta["generation"] = generation
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    "resource, kind, label, handler",
    [
        (JOBS, "Job", "lmaas.io/trainjob", "restore_trainjob_child"),
        (SERVICES, "Service", "lmaas.io/trainjob", "restore_trainjob_child"),
        (JOBS, "Job", "lmaas.io/compressjob", "restore_compressjob_child"),
    ],
)
def test_a_job_child_is_restored_on_its_deletion_alone(resource, kind, label, handler):
    body = child(kind, label, generation=1)
    assert called(resource, "DELETED", body) == {handler}
    for event_type in ("ADDED", "MODIFIED", None):  # None: seen by listing
        assert called(resource, event_type, body) == set()


@pytest.mark.parametrize("resource, kind", [(DEPLOYMENTS, "Deployment"), (SERVICES, "Service")])
def test_a_modelservice_child_is_compared_once_per_generation(resource, kind):
    generation = 2 if kind == "Deployment" else None  # a Service has no generation
    body = child(kind, "lmaas.io/modelservice", generation)
    assert called(resource, "ADDED", body) == {"restore_modelservice_child"}
    assert called(resource, "DELETED", body, memo={"compared_generation": generation}) == {"restore_modelservice_child"}
    if generation is not None:
        assert called(resource, "MODIFIED", body, memo={"compared_generation": generation}) == set()
        assert called(resource, "MODIFIED", body, memo={"compared_generation": 1}) == {"restore_modelservice_child"}
    else:
        assert called(resource, "MODIFIED", body, memo={"compared_generation": None}) == {"restore_modelservice_child"}


def test_a_resource_is_forgotten_by_the_metrics_on_its_deletion_alone():
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": "digits", "namespace": "ml", "uid": "u1", "generation": 1},
    }
    assert called(TRAINJOBS, "DELETED", body) == {"forget_deleted_trainjob"}
    assert called(TRAINJOBS, "MODIFIED", body) == set()
