"""lmaas_operator.local.documents: `lmaas run -f` reads files and folders as `kubectl apply -f` does."""

import base64
import json

import pytest
import yaml

from lmaas_operator.local.documents import load_documents
from tests.unit.local.resources import compress_job, model_service, names, train_job


def write(path, *documents):
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_a_folder_is_read_file_by_file_in_name_order(tmp_path):
    write(
        tmp_path / "20-compress-and-serve.yaml",
        compress_job("small", fromTrainJob="digits"),
        model_service("digits", fromCompressJob="small"),
    )
    write(tmp_path / "10-train.yml", train_job("digits"))
    (tmp_path / "30-more.json").write_text(json.dumps(train_job("other")))
    (tmp_path / "README.md").write_text("kind: TrainJob\n")
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested" / "00-ignored.yaml", train_job("nested"))

    found = load_documents([str(tmp_path)])

    assert found.errors == []
    assert names(found.resources) == ["TrainJob/digits", "CompressJob/small", "ModelService/digits", "TrainJob/other"]


def test_resources_come_back_with_the_crd_defaults(tmp_path):
    found = load_documents([str(write(tmp_path / "t.yaml", train_job("digits")))])
    (body,) = found.resources
    assert body["spec"]["strategy"] == "ddp"
    assert body["spec"]["hyperparameters"]["epochs"] == 1


def test_several_sources_are_read_in_the_order_given(tmp_path):
    first = write(tmp_path / "b.yaml", train_job("b"))
    second = write(tmp_path / "a.yaml", train_job("a"))
    assert names(load_documents([str(first), str(second)]).resources) == ["TrainJob/b", "TrainJob/a"]


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"nodes": 0}, "spec.nodes", "should be greater than or equal to 1"),
        ({"strategy": "zero"}, "spec.strategy", 'Unsupported value: "zero"'),
    ],
)
def test_an_invalid_resource_is_refused_naming_its_file_and_field(tmp_path, change, field, words):
    path = write(tmp_path / "train.yaml", train_job("digits", **change))
    found = load_documents([str(path)])
    assert found.resources == []
    (error,) = found.errors
    assert error.startswith(f"{path}: ")
    assert f"{field}: " in error
    assert words in error


def test_the_same_name_twice_in_one_kind_is_refused_naming_both_files(tmp_path):
    write(tmp_path / "a.yaml", train_job("digits"))
    write(tmp_path / "b.yaml", train_job("digits", nodes=2))
    found = load_documents([str(tmp_path)])
    (error,) = found.errors
    assert str(tmp_path / "a.yaml") in error and str(tmp_path / "b.yaml") in error
    assert 'TrainJob "digits"' in error


def test_the_same_name_in_two_kinds_is_fine(tmp_path):
    path = write(tmp_path / "all.yaml", train_job("digits"), model_service("digits", fromTrainJob="digits"))
    found = load_documents([str(path)])
    assert found.errors == []
    assert names(found.resources) == ["TrainJob/digits", "ModelService/digits"]


def test_other_kubernetes_kinds_are_skipped_with_a_note(tmp_path):
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "lmaas-artifacts"},
        "spec": {"accessModes": ["ReadWriteMany"]},
    }
    path = write(tmp_path / "pipeline.yaml", claim, train_job("digits"))
    found = load_documents([str(path)])
    assert found.errors == []
    assert names(found.resources) == ["TrainJob/digits"]
    (note,) = found.skipped
    assert note.startswith(f"PersistentVolumeClaim/lmaas-artifacts ({path})")


def test_a_secret_gives_its_data_and_string_data(tmp_path):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hub"},
        "data": {"token": base64.b64encode(b"s3cr3t").decode(), "user": base64.b64encode(b"old").decode()},
        "stringData": {"user": "alice", "port": 8443},
    }
    found = load_documents([str(write(tmp_path / "secret.yaml", secret))])
    assert found.errors == [] and found.resources == [] and found.skipped == []
    assert found.secrets == {"hub": {"token": "s3cr3t", "user": "alice", "port": "8443"}}  # stringData wins


def test_a_secret_with_data_that_is_not_base64_is_an_error_naming_the_file(tmp_path):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hub"}, "data": {"token": "s3cr3t!"}}
    path = write(tmp_path / "secret.yaml", secret, train_job("digits"))
    found = load_documents([str(path)])
    (error,) = found.errors
    assert str(path) in error and "token" in error


def test_a_missing_path_is_an_error_and_the_other_sources_still_load(tmp_path):
    good = write(tmp_path / "t.yaml", train_job("digits"))
    found = load_documents([str(tmp_path / "nope.yaml"), str(good)])
    assert found.errors == [f'error: the path "{tmp_path / "nope.yaml"}" does not exist']
    assert names(found.resources) == ["TrainJob/digits"]


def test_a_folder_without_manifests_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    (error,) = load_documents([str(tmp_path)]).errors
    assert str(tmp_path) in error and "holds no .yaml, .yml or .json file" in error


def test_a_file_that_is_not_yaml_is_an_error_naming_it(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("kind: TrainJob\nspec: [unclosed\n")
    (error,) = load_documents([str(path)]).errors
    assert error.startswith(f"{path}: not YAML")


def test_a_document_without_a_kind_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path / "x.yaml", {"metadata": {"name": "x"}})
    (error,) = load_documents([str(path)]).errors
    assert error.startswith(f"{path}: a document without a kind")
