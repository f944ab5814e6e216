"""lmaas_operator.local.runner: `lmaas run` validates first, runs producers before their consumers, and
skips what succeeded unchanged."""

import io
import signal
import threading

import pytest
import yaml

from lmaas_operator.local.runner import EXIT_FAILED, Runner, dependency_order
from lmaas_operator.local.store import Store
from tests.unit.local.resources import compress_job, model_service, names, stored, train_job


def test_producers_run_before_consumers_whatever_the_file_order():
    given = [stored(model_service("digits", fromTrainJob="digits")), stored(train_job("digits"))]
    assert names(dependency_order(given)) == ["TrainJob/digits", "ModelService/digits"]


def test_a_chain_runs_from_its_trainjob_to_its_modelservice():
    given = [
        stored(model_service("serve", fromCompressJob="smaller")),
        stored(compress_job("smaller", fromCompressJob="small")),
        stored(compress_job("small", fromTrainJob="digits")),
        stored(train_job("digits")),
    ]
    assert names(dependency_order(given)) == [
        "TrainJob/digits",
        "CompressJob/small",
        "CompressJob/smaller",
        "ModelService/serve",
    ]


def test_resources_without_references_keep_the_order_given():
    given = [stored(train_job("b")), stored(train_job("a")), stored(model_service("m", uri="pvc://models/m"))]
    assert names(dependency_order(given)) == ["TrainJob/b", "TrainJob/a", "ModelService/m"]


def test_a_consumer_whose_producer_is_not_given_keeps_its_place():
    # Its producer may come from an earlier run; resolving the reference decides.
    given = [stored(train_job("a")), stored(compress_job("c", fromTrainJob="elsewhere")), stored(train_job("b"))]
    assert names(dependency_order(given)) == ["TrainJob/a", "CompressJob/c", "TrainJob/b"]


def test_a_reference_cycle_goes_last_and_does_not_hang():
    given = [
        stored(compress_job("a", fromCompressJob="b")),
        stored(compress_job("b", fromCompressJob="a")),
        stored(train_job("t")),
    ]
    ordered = []
    worker = threading.Thread(target=lambda: ordered.extend(dependency_order(given)), daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "dependency_order did not return on a reference cycle"
    assert names(ordered) == ["TrainJob/t", "CompressJob/a", "CompressJob/b"]


def test_a_consumer_of_a_cycle_runs_after_the_cycle_fails():
    # Run first, c would fail with "waiting for CompressJob/a to succeed (now Pending); add its file to
    # this run" although the file was given; after a and b it fails with the cycle named instead.
    given = [
        stored(compress_job("c", fromCompressJob="a")),
        stored(compress_job("a", fromCompressJob="b")),
        stored(compress_job("b", fromCompressJob="a")),
    ]
    assert names(dependency_order(given)) == ["CompressJob/a", "CompressJob/b", "CompressJob/c"]


# --- Runner.run, on what needs no worker process -------------------------------------------


@pytest.fixture(autouse=True)
def pytests_signal_handlers_come_back():
    """Runner.run installs its own SIGINT and SIGTERM handlers in the process that runs it."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def write(path, *documents):
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def test_an_invalid_file_stops_the_run_before_anything_runs(tmp_path, capsys):
    source = write(tmp_path / "train.yaml", train_job("digits", nodes=0))
    assert Runner(tmp_path / "runs").run([source]) == EXIT_FAILED
    assert "spec.nodes" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "state").exists()


def test_files_without_lmaas_resources_are_an_error(tmp_path, capsys):
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"}, "spec": {}}
    assert Runner(tmp_path / "runs", stream=io.StringIO()).run([write(tmp_path / "pvc.yaml", claim)]) == EXIT_FAILED
    assert "no lmaas resources" in capsys.readouterr().err


def test_a_job_that_succeeded_with_the_same_spec_is_skipped(tmp_path):
    store = Store(tmp_path / "runs")
    store.put(stored(train_job("digits"), {"phase": "Succeeded", "observedGeneration": 1}))
    shown = io.StringIO()
    assert Runner(store.root, stream=shown, live=False).run([write(tmp_path / "t.yaml", train_job("digits"))]) == 0
    assert "TrainJob/digits: unchanged since it succeeded; skipped" in shown.getvalue()
    assert not (store.root / "pods").exists()
    assert store.get("TrainJob", "digits")["status"]["phase"] == "Succeeded"


def test_a_changed_immutable_spec_is_refused_with_how_to_start_over(tmp_path, capsys):
    store = Store(tmp_path / "runs")
    store.put(stored(train_job("digits"), {"phase": "Failed"}))
    source = write(tmp_path / "t.yaml", train_job("digits", strategy="fsdp"))
    assert Runner(store.root, stream=io.StringIO()).run([source]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "strategy is immutable" in err
    assert f"lmaas delete trainjob digits --dir {store.root}" in err


def test_a_compressjob_without_its_producer_fails_the_run_and_is_recorded(tmp_path):
    shown = io.StringIO()
    source = write(tmp_path / "c.yaml", compress_job("small", fromTrainJob="digits"))
    assert Runner(tmp_path / "runs", stream=shown, live=False).run([source]) == EXIT_FAILED
    assert "CompressJob/small did not succeed: Failed (ProducerNotFound)" in shown.getvalue()
    assert Store(tmp_path / "runs").get("CompressJob", "small")["status"]["reason"] == "ProducerNotFound"
