"""TrainJob handlers: apply the children, keep them there, and compute the status.

- create/update/resume: render the children (pure) and server-side apply each one;
- a child deleted by hand: the same apply brings it back;
- a timer: the status, computed from the Job and pod indexes and rank 0's progress lines.
"""
from __future__ import annotations

import logging

import kopf

from .. import metrics, progress
from ..trainjob.builders import CONTAINER, output_uri, render_children
from ..job_status import FINISHED
from ..trainjob.status import CONDITION_TYPES, compute_status
from .common import (
    GROUP, VERSION, ChildRejected, apply_children, child_to_restore, collect_finished_job, deleted, first, index_kind,
    keep_observed_generation, parse_resource, plain, ran_to_the_end, rejected_status, restore, status_timer,
    still_rejected, utcnow,
)

LABEL = "lmaas.io/trainjob"

index_kind("TrainJob", "trainjobs", LABEL, ("batch", "v1", "jobs"), "trainjob_jobs", "trainjob_pods")


@kopf.on.resume(GROUP, VERSION, "trainjobs")
@kopf.on.create(GROUP, VERSION, "trainjobs")
@kopf.on.update(GROUP, VERSION, "trainjobs", field="spec")
@metrics.measured("TrainJob")
def reconcile_trainjob(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
                       trainjob_pods: kopf.Index, **_) -> None:
    cr = parse_resource(body)
    previous = plain(body.get("status") or {})
    if ran_to_the_end(previous):
        # Nothing runs again: its Job may be gone (ttlSecondsAfterFinished) and would start over.
        logger.info("TrainJob %s/%s is %s; its children are left as they are", cr.namespace, cr.name,
                    previous["phase"])
        return
    try:
        stored = apply_children(render_children(cr, memo.config), logger)
    except ChildRejected as rejected:
        patch["status"] = rejected_status(body, rejected, CONDITION_TYPES)
        logger.error("%s", rejected)  # also an Event on the TrainJob
        return
    # The status of what was just applied, in the same write (the timers then keep it current).
    job = next(child for child in stored if child["kind"] == "Job")
    pods = list(trainjob_pods.get((cr.namespace, cr.name), []))
    patch["status"] = compute_status(cr, job, pods, [], previous, output_uri(cr, memo.config), utcnow())
    logger.info("applied the children of TrainJob %s/%s", cr.namespace, cr.name)


# Raw watch events, not kopf's change handlers: those would annotate every child to remember it.
@kopf.on.event("", "v1", "services", labels={LABEL: kopf.PRESENT}, when=deleted)
@kopf.on.event("batch", "v1", "jobs", labels={LABEL: kopf.PRESENT}, when=deleted)
async def restore_trainjob_child(event, namespace, labels, body, memo: kopf.Memo, trainjobs: kopf.Index, logger,
                                 **_) -> None:
    owner = first(trainjobs, (namespace, labels[LABEL]))
    await restore(child_to_restore(event, body, owner, lambda o: render_children(parse_resource(o), memo.config),
                                   drift=False), logger)


@status_timer("trainjobs")
@metrics.measured("TrainJob")
def refresh_trainjob_status(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
    trainjob_jobs: kopf.Index, trainjob_pods: kopf.Index, **_,
) -> None:
    if still_rejected(body):
        return
    cr = parse_resource(body)
    key = (cr.namespace, cr.name)
    job = first(trainjob_jobs, key)
    pods = list(trainjob_pods.get(key, []))
    previous = plain(body.get("status") or {})
    finished = ran_to_the_end(previous)
    if finished:
        collect_finished_job(cr, job, previous, logger)
    events = []
    if previous.get("phase") not in FINISHED and any((p.get("status") or {}).get("phase") == "Running" for p in pods):
        events = progress.read_rank0_events(pods, CONTAINER, memo, logger)
    status = compute_status(cr, job, pods, events, previous, output_uri(cr, memo.config), utcnow())
    if finished and status["phase"] not in FINISHED:
        return  # a refresh may complete a result, never undo it (its Job and pods go in the end)
    status = keep_observed_generation(status, previous)
    if status != previous:
        patch["status"] = status
