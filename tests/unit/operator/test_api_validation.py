"""lmaas_api.validation: the API server's checks, run locally on the repository's manifests."""

import pytest

from lmaas_api.validation import InvalidResource, validate
from tests.unit.corpus import invalid_cases, sample_documents

SAMPLES = sample_documents()
INVALID = invalid_cases()


@pytest.mark.parametrize("doc", [d for _, d in SAMPLES], ids=[f"{n}:{d['metadata']['name']}" for n, d in SAMPLES])
def test_every_sample_is_valid(doc):
    validate(doc)


def test_there_is_a_sample_of_every_kind_and_a_whole_pipeline():
    kinds = {d["kind"] for _, d in SAMPLES}
    assert kinds == {"TrainJob", "CompressJob", "ModelService"}
    pipeline = {d["kind"] for n, d in SAMPLES if n.startswith("pipeline/")}
    assert pipeline == {"TrainJob", "CompressJob", "ModelService"}


def test_the_invalid_corpus_is_large_enough_and_covers_every_kind():
    assert len(INVALID) >= 40  # issue #8: at least 40 invalid resources
    assert {c.documents[-1]["kind"] for c in INVALID} == {"TrainJob", "CompressJob", "ModelService"}


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_each_invalid_manifest_breaks_exactly_the_rule_it_names(case):
    old = None
    for doc in case.documents[:-1]:  # earlier documents are the stored object of an update
        old = validate(doc)
    with pytest.raises(InvalidResource) as caught:
        validate(case.documents[-1], old=old)
    (error,) = caught.value.errors
    assert error.path == (case.field or "<root>")
    assert case.message in error.message
    # The whole error names the resource, the field and the rule, as `kubectl apply` would.
    assert case.field in str(caught.value) and case.message in str(caught.value)


def test_defaults_are_filled_in_as_the_api_server_would():
    spec = validate(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "t"},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}},
        }
    )["spec"]
    assert spec["strategy"] == "ddp"
    assert spec["procsPerNode"] == 1
    assert spec["hyperparameters"]["batchSize"] == 32  # nested default under a defaulted {}
    assert spec["checkpoint"] == {"everySteps": 100, "keep": 2, "resume": True}
    assert "nodes" not in spec  # no default: it would clash with minNodes/maxNodes


def test_mutable_fields_may_change_on_update():
    old = validate(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "t"},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 2},
        }
    )
    new = {**old, "spec": {**old["spec"], "suspend": True, "ttlSecondsAfterFinished": 60}}
    assert validate(new, old=old)["spec"]["suspend"] is True


def test_several_errors_are_all_reported():
    with pytest.raises(InvalidResource) as caught:
        validate(
            {
                "apiVersion": "lmaas.io/v1alpha1",
                "kind": "ModelService",
                "metadata": {"name": "m"},
                "spec": {"model": {"uri": "pvc://a/b"}, "port": 80, "replicas": -1},
            }
        )
    assert {e.path for e in caught.value.errors} == {"spec.port", "spec.replicas"}


def test_an_unknown_kind_is_rejected_by_name():
    with pytest.raises(InvalidResource, match="supported kinds of lmaas.io/v1alpha1"):
        validate({"apiVersion": "lmaas.io/v1alpha1", "kind": "TuneJob", "metadata": {"name": "x"}, "spec": {}})
