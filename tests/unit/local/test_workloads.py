"""lmaas_operator.local.workloads: a CompressJob's model reference, resolved from the local state.

Only references that cannot resolve are run here: they fail before any process starts.
"""

from lmaas_api.spec import ModelReference
from lmaas_operator.local.store import Store
from lmaas_operator.local.workloads import run_job, unresolved
from lmaas_operator.references import resolve_model
from tests.unit.local.resources import compress_job, stored, train_job


def test_a_producer_in_no_run_is_not_found(tmp_path):
    resolution = resolve_model(
        ModelReference(from_train_job="digits"), Store(tmp_path).lookup, ("CompressJob", "small")
    )
    assert (resolution.state, resolution.reason, resolution.producer) == (
        "waiting",
        "ProducerNotFound",
        "TrainJob/digits",
    )


def test_a_producer_that_failed_in_an_earlier_run_fails_its_consumer(tmp_path):
    store = Store(tmp_path)
    store.put(
        stored(
            train_job("digits"), {"phase": "Failed", "reason": "OOMKilled", "message": "pod digits-0-0 was OOMKilled"}
        )
    )
    resolution = resolve_model(ModelReference(from_train_job="digits"), store.lookup, ("CompressJob", "small"))
    assert (resolution.state, resolution.reason) == ("failed", "ProducerFailed")
    assert resolution.message == "TrainJob/digits failed: OOMKilled: pod digits-0-0 was OOMKilled"


def test_a_succeeded_producer_gives_its_artifact_from_the_stored_status(tmp_path):
    store = Store(tmp_path)
    store.put(
        stored(
            train_job("digits"), {"phase": "Succeeded", "artifact": {"uri": "pvc://lmaas-artifacts/t/digits/artifact"}}
        )
    )
    resolution = resolve_model(ModelReference(from_train_job="digits"), store.lookup, ("CompressJob", "small"))
    assert (resolution.state, resolution.uri) == ("ready", "pvc://lmaas-artifacts/t/digits/artifact")


def test_stored_compressjobs_referring_to_each_other_are_a_cycle(tmp_path):
    store = Store(tmp_path)
    store.put(stored(compress_job("a", fromCompressJob="b")))
    store.put(stored(compress_job("b", fromCompressJob="a")))
    resolution = resolve_model(ModelReference(from_compress_job="b"), store.lookup, ("CompressJob", "a"))
    assert (resolution.state, resolution.reason) == ("failed", "ReferenceCycle")
    assert resolution.message.endswith("CompressJob/a -> CompressJob/b -> CompressJob/a")


def test_a_missing_producer_is_explained_with_the_runs_directory(tmp_path):
    store = Store(tmp_path)
    resolution = resolve_model(ModelReference(from_train_job="digits"), store.lookup, ("CompressJob", "small"))
    reason, message = unresolved("CompressJob", resolution, store)
    assert reason == "ProducerNotFound"
    assert "TrainJob/digits" in message
    assert str(store.root) in message
    assert "add its file to this run" in message


def test_a_producer_that_never_succeeded_is_explained_with_its_phase(tmp_path):
    store = Store(tmp_path)
    store.put(stored(train_job("digits"), {"phase": "Suspended"}))
    resolution = resolve_model(ModelReference(from_train_job="digits"), store.lookup, ("CompressJob", "small"))
    reason, message = unresolved("CompressJob", resolution, store)
    assert reason == "WaitingForProducer"
    assert message.startswith("waiting for TrainJob/digits to succeed (now Suspended)")
    assert "add its file to this run" in message


def test_a_compressjob_without_its_producer_fails_at_once_and_says_why(tmp_path):
    store, reported = Store(tmp_path), []
    outcome = run_job(stored(compress_job("small", fromTrainJob="digits")), store, reported.append)
    status = outcome.body["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ProducerNotFound")
    assert "TrainJob/digits" in status["message"]
    assert [b["status"]["phase"] for b in reported] == ["Failed"]
    assert not (tmp_path / "pods").exists()  # no pod was started


def test_a_compressjob_in_a_cycle_fails_naming_the_cycle(tmp_path):
    store = Store(tmp_path)
    a, b = stored(compress_job("a", fromCompressJob="b")), stored(compress_job("b", fromCompressJob="a"))
    store.put(a)
    store.put(b)
    status = run_job(a, store, store.put).body["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ReferenceCycle")
    assert store.get("CompressJob", "a")["status"]["reason"] == "ReferenceCycle"


def test_a_compressjob_whose_producer_failed_fails_with_the_producers_reason(tmp_path):
    store = Store(tmp_path)
    store.put(stored(train_job("digits"), {"phase": "Failed", "reason": "DeadlineExceeded", "message": "too slow"}))
    status = run_job(stored(compress_job("small", fromTrainJob="digits")), store, store.put).body["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ProducerFailed")
    assert "TrainJob/digits failed: DeadlineExceeded: too slow" in status["message"]
