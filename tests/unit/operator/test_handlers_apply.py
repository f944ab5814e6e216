"""lmaas_operator.handlers.apply: what a Job whose pod template cannot change (made by an earlier
lmaas, or before the worker image changed) is patched with instead (apply_child)."""

from lmaas_operator.compressjob.builders import render_job as render_compress_job
from lmaas_operator.config import OperatorConfig
from lmaas_operator.handlers.apply import job_changes
from lmaas_operator.trainjob.builders import render_job as render_train_job
from tests.unit.operator.builders import stored

CONFIG = OperatorConfig(worker_image="w:1", artifact_claim="artifacts", peering_priority=1)
COMPRESS = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "CompressJob",
    "metadata": {"name": "small"},
    "spec": {"model": {"fromTrainJob": "digits"}, "steps": [{"prune": {"sparsity": 0.5}}, {"quantize": {}}]},
}
TRAIN = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "digits"},
    "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 2},
}
INPUT = "pvc://artifacts/trainjobs/ml/digits/artifact"


def test_a_live_job_differs_only_in_what_the_spec_changed():
    rendered = render_compress_job(stored(COMPRESS), CONFIG, INPUT)
    # As the API server stores it: defaults filled in (suspend, backoffLimit), the CRD's maxRestarts 2.
    live = {"spec": {"suspend": False, "backoffLimit": 2, "completions": 1, "parallelism": 1}}
    assert job_changes(rendered, live) == {}
    edited = {**COMPRESS, "spec": {**COMPRESS["spec"], "activeDeadlineSeconds": 900, "maxRestarts": 5}}
    assert job_changes(render_compress_job(stored(edited), CONFIG, INPUT), live) == {
        "activeDeadlineSeconds": 900,
        "backoffLimit": 5,
    }
    earlier = {"spec": {**live["spec"], "ttlSecondsAfterFinished": 3600, "activeDeadlineSeconds": 60}}
    assert job_changes(rendered, earlier) == {"ttlSecondsAfterFinished": None, "activeDeadlineSeconds": None}
    queued = {"spec": {**live["spec"], "suspend": True}}  # suspended by a queue such as Kueue: left to it
    assert job_changes(rendered, queued) == {}


def test_a_trainjobs_job_follows_its_suspend():
    live = {"spec": {"suspend": False, "backoffLimit": 3, "completions": 2, "parallelism": 2}}
    suspended = stored({**TRAIN, "spec": {**TRAIN["spec"], "suspend": True}})
    assert job_changes(render_train_job(suspended, CONFIG), live) == {"suspend": True}
    assert job_changes(render_train_job(stored(TRAIN), CONFIG), {"spec": {**live["spec"], "suspend": True}}) == {
        "suspend": False
    }
