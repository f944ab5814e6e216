"""lmaas_operator.references: a consumer waits for, uses, or fails with its producer."""

from lmaas_api.spec import ModelReference
from lmaas_operator.references import resolve_model


def lookup_in(objects):
    return lambda kind, name: objects.get((kind, name))


def test_a_uri_is_used_as_it_is():
    resolution = resolve_model(ModelReference(uri="pvc://models/digits"), lookup_in({}), ("ModelService", "m"))
    assert (resolution.state, resolution.uri, resolution.producer) == ("ready", "pvc://models/digits", None)


def test_a_missing_producer_is_waited_for():
    resolution = resolve_model(ModelReference(from_train_job="digits"), lookup_in({}), ("CompressJob", "c"))
    assert (resolution.state, resolution.reason) == ("waiting", "ProducerNotFound")
    assert "TrainJob/digits" in resolution.message


def test_a_running_producer_is_waited_for_with_its_progress():
    objects = {("TrainJob", "digits"): {"status": {"phase": "Running", "progress": {"summary": "40/200 (20%)"}}}}
    resolution = resolve_model(ModelReference(from_train_job="digits"), lookup_in(objects), ("CompressJob", "c"))
    assert resolution.state == "waiting"
    assert resolution.message == "waiting for TrainJob/digits to succeed (now Running, 40/200 (20%))"


def test_a_succeeded_producer_gives_its_artifact():
    objects = {
        ("CompressJob", "small"): {
            "status": {
                "phase": "Succeeded",
                "artifact": {"uri": "pvc://a/compressjobs/ns/small/artifact", "createdAt": "2026-11-29T10:00:00Z"},
            }
        }
    }
    resolution = resolve_model(ModelReference(from_compress_job="small"), lookup_in(objects), ("ModelService", "m"))
    assert (resolution.state, resolution.uri) == ("ready", "pvc://a/compressjobs/ns/small/artifact")
    assert (resolution.producer, resolution.created_at) == ("CompressJob/small", "2026-11-29T10:00:00Z")


def test_a_failed_producer_fails_the_consumer_with_its_reason():
    objects = {
        ("TrainJob", "digits"): {
            "status": {"phase": "Failed", "reason": "OOMKilled", "message": "pod digits-0 was OOMKilled"}
        }
    }
    resolution = resolve_model(ModelReference(from_train_job="digits"), lookup_in(objects), ("CompressJob", "c"))
    assert (resolution.state, resolution.reason) == ("failed", "ProducerFailed")
    assert resolution.message == "TrainJob/digits failed: OOMKilled: pod digits-0 was OOMKilled"


def test_a_reference_cycle_is_a_failure_naming_the_chain():
    objects = {
        ("CompressJob", "a"): {"spec": {"model": {"fromCompressJob": "b"}}},
        ("CompressJob", "b"): {"spec": {"model": {"fromCompressJob": "a"}}},
    }
    resolution = resolve_model(ModelReference(from_compress_job="b"), lookup_in(objects), ("CompressJob", "a"))
    assert (resolution.state, resolution.reason) == ("failed", "ReferenceCycle")
    assert resolution.message.endswith("CompressJob/a -> CompressJob/b -> CompressJob/a")


def test_a_chain_ending_in_a_trainjob_is_no_cycle():
    objects = {
        ("CompressJob", "b"): {"spec": {"model": {"fromTrainJob": "t"}}, "status": {"phase": "Running"}},
        ("TrainJob", "t"): {"spec": {}},
    }
    resolution = resolve_model(ModelReference(from_compress_job="b"), lookup_in(objects), ("CompressJob", "a"))
    assert resolution.state == "waiting"
