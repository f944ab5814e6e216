"""lmaas_operator.local.store: a local run's state, kept across runs as the API server keeps objects."""

import yaml

from lmaas_api.validation import validate
from lmaas_operator.local.store import Store, spec_hash, stored_body
from tests.unit.local.resources import CREATED, model_service, stored, train_job

LATER = "2026-11-30T12:00:00Z"


def test_a_first_run_stores_generation_1_in_the_default_namespace():
    body = stored_body(validate(train_job("digits")), None, CREATED)
    assert body["metadata"]["generation"] == 1
    assert body["metadata"]["namespace"] == "default"
    assert body["metadata"]["creationTimestamp"] == CREATED
    assert body["metadata"]["uid"]
    assert "status" not in body


def test_a_rerun_with_the_same_spec_keeps_identity_generation_and_status():
    previous = stored(train_job("digits"), {"phase": "Succeeded", "observedGeneration": 1})
    body = stored_body(validate(train_job("digits")), previous, LATER)
    assert body["metadata"]["uid"] == previous["metadata"]["uid"]
    assert body["metadata"]["creationTimestamp"] == CREATED
    assert body["metadata"]["generation"] == 1
    assert body["status"] == {"phase": "Succeeded", "observedGeneration": 1}


def test_a_changed_spec_bumps_the_generation_and_drops_the_old_status():
    previous = stored(train_job("digits"), {"phase": "Succeeded", "observedGeneration": 1})
    body = stored_body(validate(train_job("digits", activeDeadlineSeconds=600)), previous, LATER)
    assert body["metadata"]["uid"] == previous["metadata"]["uid"]
    assert body["metadata"]["creationTimestamp"] == CREATED
    assert body["metadata"]["generation"] == 2
    assert "status" not in body


def test_spelling_a_default_out_is_no_change():
    assert spec_hash(validate(train_job("digits"))) == spec_hash(validate(train_job("digits", strategy="ddp")))
    assert spec_hash(validate(train_job("digits"))) != spec_hash(validate(train_job("digits", strategy="fsdp")))


def test_resources_of_different_names_get_different_uids():
    one = stored_body(validate(train_job("a")), None, CREATED)
    other = stored_body(validate(train_job("b")), None, CREATED)
    assert one["metadata"]["uid"] != other["metadata"]["uid"]


def test_put_then_get_gives_the_body_back(tmp_path):
    store = Store(tmp_path)
    body = stored(train_job("digits"), {"phase": "Running", "progress": {"loss": 0.25, "summary": "40/200 (20%)"}})
    store.put(body)
    assert store.get("TrainJob", "digits") == body
    assert store.lookup("TrainJob", "digits") == body
    assert store.get("TrainJob", "other") is None
    assert (tmp_path / "state" / "trainjobs" / "digits.yaml").is_file()


def test_a_stored_body_read_back_is_unchanged_for_the_next_run(tmp_path):
    # A float, a timestamp-like string: nothing may come back different, or every rerun would be a change.
    store = Store(tmp_path)
    first = stored(train_job("digits", hyperparameters={"learningRate": 0.003, "epochs": 2}))
    store.put(first)
    again = stored_body(
        validate(train_job("digits", hyperparameters={"learningRate": 0.003, "epochs": 2})),
        store.get("TrainJob", "digits"),
        LATER,
    )
    assert again["metadata"]["generation"] == 1
    assert isinstance(store.get("TrainJob", "digits")["metadata"]["creationTimestamp"], str)


def test_list_gives_the_resources_of_a_kind_and_delete_forgets_one(tmp_path):
    store = Store(tmp_path)
    for name in ("b", "a"):
        store.put(stored(train_job(name)))
    store.put(stored(model_service("m", fromTrainJob="a")))
    assert [b["metadata"]["name"] for b in store.list("TrainJob")] == ["a", "b"]
    assert store.list("CompressJob") == []
    assert store.delete("TrainJob", "a") is True
    assert store.delete("TrainJob", "a") is False
    assert [b["metadata"]["name"] for b in store.list("TrainJob")] == ["b"]


def test_the_yaml_written_has_no_anchors_when_the_status_repeats_an_object(tmp_path):
    store = Store(tmp_path)
    artifact = {"uri": "pvc://lmaas-artifacts/trainjobs/default/digits/artifact"}
    body = stored(train_job("digits"), {"artifact": artifact, "model": artifact, "conditions": [artifact, artifact]})
    store.put(body)
    text = (tmp_path / "state" / "trainjobs" / "digits.yaml").read_text()
    assert "&id" not in text and "*id" not in text
    assert text.count("pvc://lmaas-artifacts/trainjobs/default/digits/artifact") == 4
    assert yaml.safe_load(text) == body


def test_secrets_given_with_f_come_before_files_in_the_runs_directory(tmp_path):
    store = Store(tmp_path)
    (tmp_path / "secrets" / "hub").mkdir(parents=True)
    (tmp_path / "secrets" / "hub" / "token").write_text("from-disk\n")
    (tmp_path / "secrets" / "hub" / "user").write_text("bob\n")
    store.secrets = {"hub": {"token": "given"}}
    assert store.secret("hub", "token") == "given"
    assert store.secret("hub", "user") == "bob"
    assert store.secret("hub", "missing") is None
    assert store.secret("other", "token") is None


def test_a_pvc_uri_is_a_directory_under_volumes(tmp_path):
    store = Store(tmp_path)
    assert (
        store.volume_dir("pvc://lmaas-artifacts/trainjobs/default/digits/")
        == tmp_path.resolve() / "volumes" / "lmaas-artifacts" / "trainjobs" / "default" / "digits"
    )
