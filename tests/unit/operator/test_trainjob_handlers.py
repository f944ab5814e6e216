"""The TrainJob's create/update/resume handler leaves a finished TrainJob alone: its Job may have
been collected (ttlSecondsAfterFinished), and applying it again would start the training over."""
import logging

import kopf
import pytest

from lmaas_operator.handlers.trainjob import reconcile_trainjob


def trainjob(phase: str) -> dict:
    return {"apiVersion": "lmaas.io/v1alpha1", "kind": "TrainJob",
            "metadata": {"name": "digits", "namespace": "ml", "uid": "u-1", "generation": 2},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1, "suspend": True},
            "status": {"phase": phase, "observedGeneration": 1}}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_trainjob_gets_no_children_and_keeps_its_status(phase):
    patch = kopf.Patch()
    # No operator configuration and no cluster: rendering or applying anything would raise.
    reconcile_trainjob(body=kopf.Body(trainjob(phase)), patch=patch, memo=kopf.Memo(config=None),
                       logger=logging.getLogger("test"), trainjob_pods={})
    assert dict(patch) == {}
