"""What the operator keeps on a resource for kopf: change detection on generation against
status.observedGeneration (which cause kopf derives from what happened to a resource), and
handler progress that writes nothing when a handler succeeds at once."""

import kopf
import pytest
from kopf._cogs.structs import diffs
from kopf._core.intents import causes  # the detection the operator's storage feeds (kopf 1.45)

from lmaas_operator.persistence import GenerationDiffBase, ProgressAnnotations


def trainjob(generation: int = 1, observed: int | None = None, **changes) -> dict:
    body = {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {
            "name": "digits",
            "namespace": "ml",
            "uid": "u-1",
            "generation": generation,
            "resourceVersion": "981",
            "labels": {"team": "vision"},
        },
        "spec": {"nodes": 2, "suspend": False},
        "status": {"phase": "Running"},
    }
    if observed is not None:
        body["status"]["observedGeneration"] = observed
    for key, value in changes.items():
        body[key] = {**body[key], **value}
    return body


def cause(body: dict, initial: bool = False) -> causes.Reason:
    storage = GenerationDiffBase()
    wrapped = kopf.Body(body)
    old, new = storage.fetch(body=wrapped), storage.build(body=wrapped)
    return causes.detect_changing_cause(
        finalizer="lmaas.io/finalizer",
        raw_event={"type": "MODIFIED", "object": body},
        body=wrapped,
        old=old,
        new=new,
        diff=diffs.diff(old, new),
        initial=initial,
        logger=None,
        indices=None,
        memo=None,
        resource=None,
        patch=kopf.Patch(),
    ).reason


def test_a_resource_never_handled_is_created():
    assert cause(trainjob(generation=1)) == causes.Reason.CREATE
    assert cause(trainjob(generation=1), initial=True) == causes.Reason.CREATE


def test_a_spec_edit_is_an_update_and_a_label_or_status_write_is_nothing():
    # the API server bumps generation on a spec edit, not on metadata or status writes
    assert cause(trainjob(generation=2, observed=1)) == causes.Reason.UPDATE
    assert cause(trainjob(generation=1, observed=1, metadata={"labels": {"team": "nlp"}})) == causes.Reason.NOOP
    assert cause(trainjob(generation=1, observed=1, status={"phase": "Succeeded"})) == causes.Reason.NOOP


def test_a_handled_resource_seen_at_start_resumes_and_an_edited_one_updates():
    assert cause(trainjob(generation=3, observed=3), initial=True) == causes.Reason.RESUME
    assert cause(trainjob(generation=4, observed=3), initial=True) == causes.Reason.UPDATE


def test_the_handled_generation_is_stored_in_the_status_write():
    storage = GenerationDiffBase()
    body = kopf.Body(trainjob(generation=5, observed=4))
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert dict(patch) == {"status": {"observedGeneration": 5}}  # nothing on the resource itself


def test_a_handler_on_a_spec_field_is_served_and_one_on_a_status_field_refused():
    storage, body = GenerationDiffBase(), kopf.Body(trainjob(generation=2))
    assert storage.build(body=body, extra_fields={("spec",)}) == storage.build(body=body)
    with pytest.raises(ValueError, match="status"):
        GenerationDiffBase().build(body=kopf.Body(trainjob()), extra_fields={("status", "phase")})


def test_a_handler_that_succeeds_at_once_leaves_nothing_on_the_resource():
    storage, body, patch = ProgressAnnotations(prefix="lmaas.io"), kopf.Body(trainjob()), kopf.Patch()
    storage.store(
        key="reconcile_trainjob", record={"started": "2026-11-29T10:00:00", "retries": 0}, body=body, patch=patch
    )
    storage.purge(key="reconcile_trainjob", body=body, patch=patch)
    assert dict(patch) == {}


def test_a_handler_to_retry_keeps_its_progress_in_an_annotation():
    storage, body, patch = ProgressAnnotations(prefix="lmaas.io"), kopf.Body(trainjob()), kopf.Patch()
    storage.store(
        key="reconcile_trainjob", record={"retries": 1, "delayed": "2026-11-29T10:00:10"}, body=body, patch=patch
    )
    assert list(patch["metadata"]["annotations"]) == ["lmaas.io/reconcile_trainjob"]


def test_progress_is_what_kopfs_own_storage_writes_and_reads_less_its_marker():
    """ProgressAnnotations writes kopf's keys and records through kopf's public names: if a kopf
    release changes either, this fails (and kopf's fetch and purge would no longer match)."""
    body, record = kopf.Body(trainjob()), {"started": "2026-11-29T10:00:00", "retries": 2, "message": None}
    ours, kopfs = kopf.Patch(), kopf.Patch()
    ProgressAnnotations(prefix="lmaas.io").store(key="reconcile_trainjob/spec", record=record, body=body, patch=ours)
    kopf.AnnotationsProgressStorage(prefix="lmaas.io").store(
        key="reconcile_trainjob/spec", record=record, body=body, patch=kopfs
    )
    marker = {"lmaas.io/kopf-managed": "yes"}
    assert dict(kopfs) == {"metadata": {"annotations": {**ours["metadata"]["annotations"], **marker}}}
    stored = kopf.Body(trainjob(metadata={"annotations": ours["metadata"]["annotations"]}))
    assert ProgressAnnotations(prefix="lmaas.io").fetch(key="reconcile_trainjob/spec", body=stored) == {
        "started": "2026-11-29T10:00:00",
        "retries": 2,
    }

    ours, kopfs = kopf.Patch(), kopf.Patch()
    ProgressAnnotations(prefix="lmaas.io").touch(body=body, patch=ours, value="x")
    kopf.AnnotationsProgressStorage(prefix="lmaas.io").touch(body=body, patch=kopfs, value="x")
    assert dict(kopfs) == {"metadata": {"annotations": {**ours["metadata"]["annotations"], **marker}}}
    touched = kopf.Body(trainjob(metadata={"annotations": ours["metadata"]["annotations"]}))
    untouched = kopf.Patch()
    ProgressAnnotations(prefix="lmaas.io").touch(body=touched, patch=untouched, value="x")
    assert dict(untouched) == {}  # already so: nothing to write
