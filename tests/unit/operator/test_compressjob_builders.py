"""lmaas_operator.compressjob.builders: a CompressJob's children, tested as data."""

import pytest

from lmaas_api import contract
from lmaas_operator.compressjob.builders import render_children, render_job
from lmaas_operator.config import OperatorConfig
from lmaas_operator.references import Resolution
from tests.unit.corpus import sample_documents
from tests.unit.operator.builders import assert_valid_kubernetes, projected_config, stored

CONFIG = OperatorConfig(worker_image="w:1", artifact_claim="artifacts", peering_priority=1)
COMPRESS = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "CompressJob",
    "metadata": {"name": "small"},
    "spec": {"model": {"fromTrainJob": "digits"}, "steps": [{"prune": {"sparsity": 0.5}}, {"quantize": {}}]},
}
INPUT = "pvc://artifacts/trainjobs/ml/digits/artifact"
MODEL = Resolution("ready", "ProducerSucceeded", "", uri=INPUT, producer="TrainJob/digits")


def env_of(job):
    return {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(
    "doc", [d for _, d in sample_documents() if d["kind"] == "CompressJob"], ids=lambda d: d["metadata"]["name"]
)
def test_children_of_every_sample_are_valid_kubernetes_objects(doc):
    children = render_children(stored(doc), CONFIG, MODEL)
    assert [c["kind"] for c in children] == ["Job"]
    assert_valid_kubernetes(*children)


def test_the_worker_gets_its_input_and_output_directories():
    (job,) = render_children(stored(COMPRESS), CONFIG, MODEL)
    env = env_of(job)
    assert env[contract.INPUT_DIR_ENV] == "/var/lib/lmaas/volumes/artifacts/trainjobs/ml/digits/artifact"
    assert env[contract.OUTPUT_DIR_ENV] == "/var/lib/lmaas/volumes/artifacts/compressjobs/ml/small"
    document = projected_config(job["spec"]["template"])
    assert document["status"]["input"]["uri"] == INPUT
    assert [list(step) for step in document["spec"]["steps"]] == [["prune"], ["quantize"]]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["lmaas", "compress"]


def test_an_input_on_another_claim_is_mounted_read_only():
    job = render_job(stored(COMPRESS), CONFIG, "pvc://models/digits")
    mounts = {m["mountPath"]: m for m in job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/var/lib/lmaas/volumes/models"].get("readOnly") is True
    assert not mounts["/var/lib/lmaas/volumes/artifacts"].get("readOnly")
    same = render_job(stored(COMPRESS), CONFIG, INPUT)  # one claim: mounted once, writable
    claims = [v for v in same["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert len(claims) == 1


def test_a_broken_bound_or_config_fails_the_job_at_once():
    job = render_job(stored(COMPRESS), CONFIG, INPUT)
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["values"] == [contract.EXIT_CONFIG_ERROR, contract.EXIT_QUALITY_BOUND]
    assert job["spec"]["backoffLimit"] == 2  # the CRD's default maxRestarts
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_what_may_change_while_the_job_runs_leaves_its_pod_template_as_it_was():
    before = render_job(stored(COMPRESS), CONFIG, INPUT)
    edited = {
        **COMPRESS,
        "spec": {**COMPRESS["spec"], "activeDeadlineSeconds": 900, "maxRestarts": 0, "ttlSecondsAfterFinished": 30},
    }
    after = render_job(stored(edited, generation=2), CONFIG, INPUT)
    assert after["spec"]["template"] == before["spec"]["template"]
