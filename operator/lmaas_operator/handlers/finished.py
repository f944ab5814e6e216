"""The end of a TrainJob or a CompressJob: its result is final, and its Job goes
spec.ttlSecondsAfterFinished after it."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from lmaas_api import clock
from lmaas_api.resource import CustomResource

from .. import kube
from ..job_status import FINISHED


def ran_to_the_end(status: dict[str, Any]) -> bool:
    """Whether a resource's Job ran and finished (it had a startTime; a resource failed before any
    Job, say on a model reference or a refused child, may still recover)."""
    return status.get("phase") in FINISHED and bool(status.get("startTime"))


def collect_finished_job(
    cr: CustomResource, job: dict[str, Any] | None, status: dict[str, Any], logger: logging.Logger
) -> None:
    """Delete a finished resource's Job (and so its pods) spec.ttlSecondsAfterFinished after the
    completionTime in its status (`status` as written by an earlier refresh, so that the result
    had one more refresh to be complete). The operator does it rather than the Job controller, so
    that the result is in the status first and the Job is not restored by hand-deletion repair."""
    ttl = cr.spec.ttl_seconds_after_finished
    if ttl is None or job is None or not status.get("completionTime"):
        return
    finished = clock.parse(status["completionTime"])
    if datetime.datetime.now(datetime.UTC) >= finished + datetime.timedelta(seconds=ttl):
        if kube.delete("batch/v1", "Job", cr.name, cr.namespace):
            logger.info(
                "deleted the Job of %s %s/%s, %s s after it finished (ttlSecondsAfterFinished)",
                cr.kind,
                cr.namespace,
                cr.name,
                ttl,
            )
