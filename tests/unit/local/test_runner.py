"""lmaas_operator.local.runner.dependency_order: `lmaas run` runs producers before their consumers."""
import threading

import pytest

from lmaas_operator.local.runner import dependency_order
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
        "TrainJob/digits", "CompressJob/small", "CompressJob/smaller", "ModelService/serve"]


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


@pytest.mark.xfail(strict=True, reason="runner.dependency_order appends everything unplaced in the order given, so a "
                   "consumer of a cycle member runs before the cycle and fails with 'waiting for ... add its file'")
def test_a_consumer_of_a_cycle_runs_after_the_cycle_fails():
    # Run first, c would fail with "waiting for CompressJob/a to succeed (now Pending); add its file to
    # this run" although the file was given; after a and b it fails with the cycle named instead.
    given = [
        stored(compress_job("c", fromCompressJob="a")),
        stored(compress_job("a", fromCompressJob="b")),
        stored(compress_job("b", fromCompressJob="a")),
    ]
    assert names(dependency_order(given)) == ["CompressJob/a", "CompressJob/b", "CompressJob/c"]
