"""`lmaas get` and `lmaas delete` (lmaas_cli.main) over the state that `lmaas run` leaves in --dir."""

import pytest

from lmaas_cli.main import main
from lmaas_operator.local.store import Store
from tests.unit.local.resources import compress_job, model_service, stored, train_job


@pytest.fixture
def runs(tmp_path):
    """A runs directory after `lmaas run` of a train → compress → serve pipeline, with outputs and logs."""
    store = Store(tmp_path / "runs")
    store.put(
        stored(train_job("digits"), {"phase": "Succeeded", "nodes": "1", "progress": {"summary": "200/200 (100%)"}})
    )
    store.put(stored(train_job("other"), {"phase": "Failed", "reason": "BackoffLimitExceeded"}))
    store.put(stored(compress_job("digits-small", fromTrainJob="digits"), {"phase": "Running"}))
    store.put(stored(model_service("digits", fromCompressJob="digits-small"), {"phase": "Ready"}))
    for kind, name in (("trainjobs", "digits"), ("trainjobs", "other"), ("compressjobs", "digits-small")):
        output = store.volumes / "lmaas-artifacts" / kind / "default" / name
        output.mkdir(parents=True)
        (output / "model.safetensors").write_text("weights")
        pod = store.pod_dir(kind[:-1], name, f"{name}-0-0")
        pod.mkdir(parents=True)
        (pod / "log.txt").write_text("log\n")
    return store


def lmaas(*args, store):
    return main([*args, "--dir", str(store.root)])


def test_get_lists_the_resources_of_a_kind(runs, capsys):
    assert lmaas("get", "tj", store=runs) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "NODES", "PROGRESS", "LOSS", "AGE"]
    assert [line.split()[:2] for line in lines[1:]] == [["digits", "Succeeded"], ["other", "Failed"]]


def test_get_of_one_name(runs, capsys):
    assert lmaas("get", "trainjobs", "other", "-o", "wide", store=runs) == 0
    (row,) = capsys.readouterr().out.splitlines()[1:]
    assert row.split()[:2] == ["other", "Failed"] and "BackoffLimitExceeded" in row


def test_get_without_a_kind_lists_every_kind(runs, capsys):
    assert lmaas("get", store=runs) == 0
    out = capsys.readouterr().out
    assert "lmaas.io/digits-small " in out and out.count("lmaas.io/digits ") == 2


def test_get_of_a_missing_name_is_not_found(runs, capsys):
    assert lmaas("get", "tj", "nope", store=runs) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert 'Error from server (NotFound): trainjobs.lmaas.io "nope" not found' in captured.err


def test_get_of_an_unknown_kind_is_an_error(runs, capsys):
    assert lmaas("get", "pods", store=runs) == 1
    assert 'resource type "pods"' in capsys.readouterr().err


def test_get_in_an_empty_directory_says_so(tmp_path, capsys):
    assert main(["get", "--dir", str(tmp_path)]) == 0
    assert "No resources found" in capsys.readouterr().err


def test_delete_forgets_a_job_its_output_and_its_logs(runs, capsys):
    assert lmaas("delete", "tj", "digits", store=runs) == 0
    assert capsys.readouterr().out == 'trainjob.lmaas.io "digits" deleted\n'
    assert runs.get("TrainJob", "digits") is None
    assert not (runs.volumes / "lmaas-artifacts" / "trainjobs" / "default" / "digits").exists()
    assert not runs.pod_dir("TrainJob", "digits", "x").parent.exists()
    # Nothing else goes: not the other job, nor the ModelService of the same name.
    assert (runs.volumes / "lmaas-artifacts" / "trainjobs" / "default" / "other" / "model.safetensors").exists()
    assert runs.get("ModelService", "digits") is not None
    assert lmaas("get", "tj", "digits", store=runs) == 1


def test_delete_of_a_modelservice_keeps_the_artifacts(runs, capsys):
    assert lmaas("delete", "ms", "digits", store=runs) == 0
    assert runs.get("ModelService", "digits") is None
    assert runs.get("TrainJob", "digits") is not None
    assert (runs.volumes / "lmaas-artifacts" / "compressjobs" / "default" / "digits-small").exists()


def test_delete_of_a_missing_name_is_not_found(runs, capsys):
    assert lmaas("delete", "cpj", "nope", store=runs) == 1
    assert 'Error from server (NotFound): compressjobs.lmaas.io "nope" not found' in capsys.readouterr().err


def test_delete_honours_an_output_uri(runs, capsys):
    runs.put(stored(train_job("custom", output={"uri": "pvc://models/digits/v1"})))
    output = runs.volumes / "models" / "digits" / "v1"
    output.mkdir(parents=True)
    (runs.volumes / "models" / "digits" / "v0").mkdir()
    assert lmaas("delete", "tj", "custom", store=runs) == 0
    assert not output.exists()
    assert (runs.volumes / "models" / "digits" / "v0").exists()


def test_delete_never_removes_anything_outside_the_runs_directory(tmp_path, capsys):
    project = tmp_path / "project"
    store = Store(project / "runs")
    # The CRD refuses .. segments; a state file edited by hand could still hold them.
    body = stored(train_job("escape", output={"uri": "pvc://lmaas-artifacts/x"}))
    body["spec"]["output"]["uri"] = "pvc://lmaas-artifacts/../../.."
    store.put(body)
    (store.volumes / "lmaas-artifacts").mkdir(parents=True)  # any earlier run made it
    (project / "train.yaml").write_text("my manifests")
    main(["delete", "tj", "escape", "--dir", str(store.root)])
    assert (project / "train.yaml").exists()


def test_delete_of_a_job_writing_to_a_claims_root_keeps_the_other_jobs_outputs(runs, capsys):
    runs.put(stored(train_job("at-root", output={"uri": "pvc://lmaas-artifacts"})))
    lmaas("delete", "tj", "at-root", store=runs)
    assert (runs.volumes / "lmaas-artifacts" / "trainjobs" / "default" / "other" / "model.safetensors").exists()
