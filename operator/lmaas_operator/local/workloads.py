"""TrainJob and CompressJob, run locally with the operator's own builders and status functions.

The children are rendered exactly as for a cluster (`render_children`), the Job runs under the
local Job controller, its pods as local processes, and the status comes from the kind's
`compute_status`, fed with the Job and pods the local controller reports. A TrainJob's N nodes
are N torchrun agents rendezvousing over c10d on 127.0.0.1: the multi-node path, not a shortcut.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmaas_api.clock import utc_now
from lmaas_api.resource import CustomResource

from .. import progress as progress_lines
from ..compressjob import builders as compress_builders
from ..compressjob import status as compress_status
from ..conditions import with_phase
from ..config import OperatorConfig
from ..pods import output_uri
from ..references import Resolution, resolve_model
from ..trainjob import builders as train_builders
from ..trainjob import status as train_status
from .jobs import LocalJob
from .kubelet import LocalPod, free_port, ignore_further_interrupts
from .store import Store

POLL_SECONDS = 0.5
LOCAL_CONFIG = OperatorConfig(worker_image="(local)", peering="", peering_priority=0)

OnStatus = Callable[[dict[str, Any]], None]
"""Called with the resource (metadata, spec, status) each time its status changes."""


class Interrupted(Exception):
    """Ctrl-C while a job ran: the job was stopped and its status recorded."""


@dataclass
class Outcome:
    body: dict[str, Any]
    log_tail: list[str]


def _job_of(children: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = [c for c in children if c["kind"] == "Job"]
    return job


def unresolved(kind: str, resolution: Resolution, store: Store) -> tuple[str, str]:
    """A reference that will never resolve locally: nothing else is going to create or run it."""
    if resolution.reason == "ProducerNotFound":
        return "ProducerNotFound", (
            f"{resolution.producer} is neither in the files given nor in an earlier run under "
            f"{store.root}: add its file to this run"
        )
    return resolution.reason, f"{resolution.message}; add its file to this run (lmaas run runs producers first)"


def run_job(body: dict[str, Any], store: Store, on_status: OnStatus) -> Outcome:
    """Run a TrainJob or a CompressJob to its end; the returned body carries the final status."""
    cr = CustomResource.from_body(body)
    previous = dict(body.get("status") or {})
    if cr.kind == "TrainJob":
        output = output_uri(cr, LOCAL_CONFIG.artifact_claim)
        children = train_builders.render_children(cr, LOCAL_CONFIG)
        rendezvous = {"PET_RDZV_ENDPOINT": f"127.0.0.1:{free_port()}"}

        def compute(job, pods, events, previous):
            return train_status.compute_status(cr, job, pods, events, previous, output, utc_now())
    else:
        resolution = resolve_model(cr.spec.model, store.lookup, (cr.kind, cr.name))
        if resolution.state != "ready":
            status = compress_status.compute_status(cr, resolution, None, [], [], previous, "", utc_now())
            if resolution.state == "waiting":
                status = with_phase(
                    status,
                    previous.get("conditions"),
                    compress_status.CONDITION_TYPES,
                    "Failed",
                    *unresolved(cr.kind, resolution, store),
                    cr.generation,
                    utc_now(),
                )
            body = {**body, "status": status}
            on_status(body)
            return Outcome(body, [])
        output = output_uri(cr, LOCAL_CONFIG.artifact_claim)
        children = compress_builders.render_children(cr, LOCAL_CONFIG, resolution)
        rendezvous = {}
        # A CompressJob run again starts over (on the producer's artifact of now): nothing of an
        # earlier run's figures may show as this run's; only the conditions' history stays.
        previous = {"conditions": previous.get("conditions") or []}

        def compute(job, pods, events, previous):
            return compress_status.compute_status(cr, resolution, job, pods, events, previous, output, utc_now())

    events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def on_line(line: str) -> None:
        for event in progress_lines.parse_events([line]):
            events.put(event)

    manifest = _job_of(children)

    def make_pod(index: int, attempt: int) -> LocalPod:
        name = f"{manifest['metadata']['name']}-{index}-{attempt}"
        return LocalPod(
            name,
            manifest["spec"]["template"],
            store.pod_dir(cr.kind, cr.name, name),
            store.volumes,
            store.secret,
            index=index,
            env_overrides=rendezvous,
            on_line=on_line,
        )

    job = LocalJob(manifest, make_pod)
    job.start()
    status = previous
    try:
        while True:
            job.step()
            seen = []
            while not events.empty():
                seen.append(events.get())
            new = compute(job.manifest(), job.pod_manifests(), seen, status)
            if new != status:
                status = new
                body = {**body, "status": status}
                on_status(body)
            if job.finished or job.suspended:
                break
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        ignore_further_interrupts()
        job.stop()
        status = _interrupted(cr, status, utc_now())
        body = {**body, "status": status}
        on_status(body)
        raise Interrupted(f"{cr.kind} {cr.name}") from None
    tails = [line for pod in job.pods[-1:] for line in pod.tail(20)] if status.get("phase") == "Failed" else []
    return Outcome(body, tails)


def _interrupted(cr: CustomResource, status: dict[str, Any], now: str) -> dict[str, Any]:
    """What a stopped local run records: a TrainJob is Suspended (running again resumes from the
    latest checkpoint); a CompressJob Failed (running again starts it over)."""
    if cr.kind == "TrainJob":
        phase, message, types = (
            "Suspended",
            "stopped by Ctrl-C; run again to resume from the latest checkpoint",
            train_status.CONDITION_TYPES,
        )
    else:
        phase, message, types = (
            "Failed",
            "stopped by Ctrl-C; run again to start it over",
            compress_status.CONDITION_TYPES,
        )
    return with_phase(status, status.get("conditions"), types, phase, "Interrupted", message, cr.generation, now)
