"""A finished TrainJob or CompressJob is left alone by its handlers (create, update, resume and the
status timer, one function for every kind): its Job may have been collected
(ttlSecondsAfterFinished), and applying it again would run the work again; its status is final."""

import logging

import kopf
import pytest

from lmaas_operator.config import OperatorConfig
from lmaas_operator.handlers.compressjob import reconcile_compressjob, refresh_compressjob_status
from lmaas_operator.handlers.trainjob import reconcile_trainjob, refresh_trainjob_status

CONFIG = OperatorConfig(worker_image="w:1", artifact_claim="artifacts", peering_priority=1)
META = {"namespace": "ml", "uid": "u-1", "generation": 2}
# No Job or pod in the indexes: collected. No cluster either: applying anything would raise.
INDEXES = {
    "trainjobs": {},
    "compressjobs": {},
    "trainjob_workloads": {},
    "trainjob_pods": {},
    "compressjob_workloads": {},
    "compressjob_pods": {},
}


def body(kind: str, spec: dict, phase: str) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "digits", **META},
            "spec": spec,
            "status": {"phase": phase, "observedGeneration": 1, "startTime": "2026-11-29T10:00:00Z"},
        }
    )


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_trainjob_gets_no_children_and_keeps_its_status(phase):
    patch = kopf.Patch()
    spec = {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1, "suspend": True}
    reconcile_trainjob(
        body=body("TrainJob", spec, phase),
        patch=patch,
        memo=kopf.Memo(config=CONFIG),
        logger=logging.getLogger("test"),
        **INDEXES,
    )
    assert dict(patch) == {}


@pytest.mark.parametrize("handler", [reconcile_compressjob, refresh_compressjob_status])
@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_compressjob_gets_no_children_and_keeps_its_status(phase, handler):
    patch = kopf.Patch()
    spec = {"model": {"uri": "pvc://models/digits"}, "steps": [{"quantize": {}}], "ttlSecondsAfterFinished": 60}
    # Its Job gone (collected): nothing to apply, and the status is not undone (Pending, say).
    handler(
        body=body("CompressJob", spec, phase),
        patch=patch,
        memo=kopf.Memo(config=CONFIG),
        logger=logging.getLogger("test"),
        **INDEXES,
    )
    assert dict(patch) == {}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_refresh_does_not_undo_a_finished_trainjob_whose_job_is_gone(phase):
    patch = kopf.Patch()
    spec = {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1}
    refresh_trainjob_status(
        body=body("TrainJob", spec, phase),
        patch=patch,
        memo=kopf.Memo(config=CONFIG),
        logger=logging.getLogger("test"),
        **INDEXES,
    )
    assert dict(patch) == {}
