"""CompressJob handlers: wait for the input model, then run the Job, and compute the status.

One level-based reconcile runs on create, update (spec), resume and every STATUS_INTERVAL: it
resolves the model reference, applies the Job once the input is known, brings a running Job's
mutable fields (deadline, restarts) to the spec's, and writes the status.
"""
from __future__ import annotations

import logging

import kopf
import kubernetes

from .. import kube, metrics, progress
from ..compressjob.builders import CONTAINER, CompressJob, output_uri, render_children, render_job
from ..compressjob.status import CONDITION_TYPES, compute_status
from ..job_status import FINISHED
from ..references import Lookup, resolve_model
from .common import (
    GROUP, VERSION, ChildRejected, apply_children, child_to_restore, collect_finished_job, deleted, first, index_kind,
    job_changes, parse_resource, plain, ran_to_the_end, rejected_status, restore, status_timer, still_rejected,
    utcnow,
)

LABEL = "lmaas.io/compressjob"
FOLLOWED = ("activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished")  # see follow_spec

index_kind("CompressJob", "compressjobs", LABEL, ("batch", "v1", "jobs"), "compressjob_jobs", "compressjob_pods")


def producers(namespace: str, trainjobs: kopf.Index, compressjobs: kopf.Index) -> Lookup:
    """Look producers up in the operator's indexes (no API call per reconcile)."""
    def lookup(kind: str, name: str):
        return first(trainjobs if kind == "TrainJob" else compressjobs, (namespace, name))
    return lookup


def _input_uri(owner: dict) -> str | None:
    return ((owner.get("status") or {}).get("input") or {}).get("uri")


@kopf.on.resume(GROUP, VERSION, "compressjobs")
@kopf.on.create(GROUP, VERSION, "compressjobs")
@kopf.on.update(GROUP, VERSION, "compressjobs", field="spec")
@status_timer("compressjobs")
@metrics.measured("CompressJob")
def reconcile_compressjob(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
    compressjob_jobs: kopf.Index, compressjob_pods: kopf.Index, trainjobs: kopf.Index, compressjobs: kopf.Index, **_,
) -> None:
    if still_rejected(body):
        return
    cr = parse_resource(body)
    key = (cr.namespace, cr.name)
    previous = plain(body.get("status") or {})
    resolution = resolve_model(cr.spec.model, producers(cr.namespace, trainjobs, compressjobs), ("CompressJob", cr.name))
    job = first(compressjob_jobs, key)
    finished = ran_to_the_end(previous)
    if finished:
        collect_finished_job(cr, job, previous, logger)
    pods = list(compressjob_pods.get(key, []))
    if job is None and previous.get("phase") not in FINISHED and resolution.state == "ready":
        input_uri = _input_uri(body) or resolution.uri
        try:
            apply_children(render_children(cr, memo.config, input_uri), logger)
        except ChildRejected as rejected:
            patch["status"] = rejected_status(body, rejected, CONDITION_TYPES)
            logger.error("%s", rejected)
            return
        logger.info("input %s is ready; started compressing", input_uri)
    elif job is not None and not finished and _input_uri(body):
        follow_spec(cr, job, _input_uri(body), memo, logger)
    events = []
    if any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        events = progress.read_rank0_events(pods, CONTAINER, memo, logger)
    status = compute_status(cr, resolution, job, pods, events, previous, output_uri(cr, memo.config), utcnow())
    if finished and status["phase"] not in FINISHED:
        return  # a refresh may complete a result, never undo it (its Job and pods go in the end)
    if status != previous:
        patch["status"] = status


def follow_spec(cr: CompressJob, job: dict, input_uri: str, memo: kopf.Memo, logger: logging.Logger) -> None:
    """Bring a running Job's deadline and restart budget (what the CRD lets change) to the spec's,
    and remove a TTL an earlier lmaas left to the Job controller. Not `suspend`: a queue such as
    Kueue suspends and resumes the Job. A refused patch is said (an Event) and tried again at the
    next refresh; the status is still written."""
    changes = job_changes(render_job(cr, memo.config, input_uri), job, FOLLOWED)
    if not changes:
        return
    try:
        kube.merge_patch("batch/v1", "Job", cr.name, cr.namespace, {"spec": changes})
    except kubernetes.client.ApiException as error:
        logger.error("the Job of CompressJob %s/%s could not follow the spec %s: %s %s", cr.namespace, cr.name,
                     changes, error.status, error.reason)
        return
    logger.info("the Job of CompressJob %s/%s follows the spec: %s", cr.namespace, cr.name, changes)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL: kopf.PRESENT}, when=deleted)
async def restore_compressjob_child(event, namespace, labels, body, memo: kopf.Memo, compressjobs: kopf.Index, logger,
                                    **_) -> None:
    owner = first(compressjobs, (namespace, labels[LABEL]))
    if owner is not None and _input_uri(owner):
        await restore(child_to_restore(
            event, body, owner, lambda o: render_children(parse_resource(o), memo.config, _input_uri(o)), drift=False),
            logger)
