"""What every kind's handlers share."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
from typing import Any, Callable, TypeVar

import kopf
import kubernetes
import pydantic

from .. import kube, metrics
from lmaas_api.crds import GROUP, VERSION
from lmaas_api.spec import ApiModel
from ..conditions import with_phase
from ..job_status import FINISHED
from lmaas_api.resource import CustomResource

SpecT = TypeVar("SpecT", bound=ApiModel)

__all__ = [
    "GROUP", "VERSION", "deleted", "first", "keep_observed_generation", "parse_resource", "parse_spec", "plain",
    "child_to_restore", "restore", "utcnow",
]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # RFC 3339 in UTC, as the API server writes times
STATUS_INTERVAL = 3.0  # seconds between status refreshes of a resource
# The create handlers write the first status with the children. A first refresh STATUS_INTERVAL
# after creation lands in the middle of a burst of new resources and slows their handlers (the
# p99 of bench/operator at 200 resources; bench/README.md has the figures).
FIRST_REFRESH = 2 * STATUS_INTERVAL


def exists(resource: kopf.Resource, namespace: str, name: str, **indexes: Any) -> bool:
    """Whether a resource is in its kind's index (index_kind indexes each kind under its plural).
    kopf drops a deleted resource from its indexes before it matches timers against it, so this
    filter is what stops a deleted resource's status timer."""
    return (namespace, name) in indexes[resource.plural]


def deleted(event: kopf.RawEvent, **_: Any) -> bool:
    """The filter of an event handler that acts on deletions alone. kopf evaluates it before the
    call, so that the other events of the kind (most of them: every status update) cost no
    handler call (its context, task and outcome)."""
    return event["type"] == "DELETED"


def index_kind(kind: str, plural: str, label: str, workload: tuple[str, str, str], workload_index: str,
               pods_index: str) -> None:
    """Register what the handlers of a kind read instead of calling the API server: the kind
    itself under its plural (what `exists` and producer lookups read), its Job or Deployment
    (`workload`: group, version, plural) and its pods by owner name under the given index names;
    and the forgetting of a deleted resource's metrics."""
    owned = {label: kopf.PRESENT}

    async def index_workload(namespace, labels, body, **_):
        return {(namespace, labels[label]): indexed_workload(body)}

    async def index_pods(namespace, labels, body, **_):
        return {(namespace, labels[label]): indexed_pod(body)}

    async def index_resource(namespace, name, body, **_):
        return {(namespace, name): indexed_resource(body)}

    async def forget_deleted(namespace, name, uid, **_) -> None:
        metrics.forget(kind, namespace, name, uid)

    kopf.index(*workload, labels=owned, id=workload_index)(index_workload)
    kopf.index("", "v1", "pods", labels=owned, id=pods_index)(index_pods)
    kopf.on.event(GROUP, VERSION, plural, id=f"forget_deleted_{kind.lower()}", when=deleted)(forget_deleted)
    kopf.index(GROUP, VERSION, plural, id=plural)(index_resource)


def status_timer(plural: str) -> Callable:
    """kopf.timer every STATUS_INTERVAL seconds from FIRST_REFRESH on, while the resource exists
    (see without_finalizers)."""
    return kopf.timer(GROUP, VERSION, plural, interval=STATUS_INTERVAL, initial_delay=FIRST_REFRESH, when=exists)


def without_finalizers(registry: kopf.OperatorRegistry) -> None:
    """Registered timers that do not ask for kopf's finalizer.

    kopf puts a finalizer on every resource a timer runs for, so that it can stop the timer before
    the resource goes. The operator has nothing to do at deletion (children go with their owner
    through ownerReferences; `exists` stops the timer) and the finalizer costs: a write and a
    watch round trip before a new resource's first handler runs; a resource that cannot be deleted
    while the operator is down; a namespace that stays Terminating for ever under a namespaced
    operator, because kopf stops watching a terminating namespace before it removes its
    finalizers (nolar/kopf#1088). kopf has no setting for it, so this replaces each timer in the
    registry with a copy that does not ask (kopf internals, pinned by
    tests/integration/test_deletion.py, which fails if they change)."""
    spawning = registry._spawning  # noqa: SLF001 (no public way; see above)
    for index, handler in enumerate(spawning._handlers):  # noqa: SLF001
        if handler.when is not exists:
            raise RuntimeError(f"{handler} must stop on deletion by itself: register it with status_timer()")
        spawning._handlers[index] = dataclasses.replace(handler, requires_finalizer=False)  # noqa: SLF001


def ran_to_the_end(status: dict[str, Any]) -> bool:
    """Whether a TrainJob's or CompressJob's Job ran and finished (it had a startTime; a resource
    failed before any Job, say on a model reference or a refused child, may still recover)."""
    return status.get("phase") in FINISHED and bool(status.get("startTime"))


def collect_finished_job(cr: CustomResource, job: dict[str, Any] | None, status: dict[str, Any],
                         logger: logging.Logger) -> None:
    """Delete a finished resource's Job (and so its pods) spec.ttlSecondsAfterFinished after the
    completionTime in its status (`status` as written by an earlier refresh, so that the result
    had one more refresh to be complete). The operator does it rather than the Job controller, so
    that the result is in the status first and the Job is not restored by hand-deletion repair."""
    ttl = cr.spec.ttl_seconds_after_finished
    if ttl is None or job is None or not status.get("completionTime"):
        return
    finished = datetime.datetime.strptime(status["completionTime"], TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    if datetime.datetime.now(datetime.timezone.utc) >= finished + datetime.timedelta(seconds=ttl):
        if kube.delete("batch/v1", "Job", cr.name, cr.namespace):
            logger.info("deleted the Job of %s %s/%s, %s s after it finished (ttlSecondsAfterFinished)",
                        cr.kind, cr.namespace, cr.name, ttl)


def parse_spec(spec_type: type[SpecT], body: kopf.Body) -> SpecT:
    """The typed spec; a spec the CRD let through but the types refuse is a permanent error."""
    try:
        return spec_type.parse(plain(body.get("spec")))
    except pydantic.ValidationError as error:
        raise kopf.PermanentError(f"{body['kind']} spec does not match {GROUP}/{VERSION}: {error}") from error


def parse_resource(body: kopf.Body) -> CustomResource:
    """Identity and typed spec of a stored CR; see parse_spec for what a bad spec does."""
    try:
        return CustomResource.from_body(plain(body))
    except pydantic.ValidationError as error:
        raise kopf.PermanentError(f"{body['kind']} spec does not match {GROUP}/{VERSION}: {error}") from error


def utcnow() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime(TIME_FORMAT)


def keep_observed_generation(status: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """`status` with the observedGeneration of `previous`: for a timer that only observes, since
    observedGeneration is the generation whose children were applied, and what tells kopf that a
    spec change is still to be handled (main.GenerationDiffBase)."""
    status = {key: value for key, value in status.items() if key != "observedGeneration"}
    if "observedGeneration" in previous:
        status["observedGeneration"] = previous["observedGeneration"]
    return status


def plain(value: Any) -> Any:
    """kopf's views of the body → plain dicts and lists, as pydantic expects."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def first(index: kopf.Index, key: Any) -> Any:
    """The one value an index holds under `key`, or None."""
    return next(iter(index.get(key, [])), None)


def is_subset(wanted: Any, live: Any) -> bool:
    """Whether every field of `wanted` has its value in `live` (the server adds defaults; an
    edit by hand changes or removes what the operator set)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and is_subset(v, live[k]) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(wanted) == len(live) and all(map(is_subset, wanted, live))
    return wanted == live or str(wanted) == str(live)


def child_to_restore(
    event: kopf.RawEvent, body: kopf.Body, owner: dict[str, Any] | None,
    render: Callable[[dict[str, Any]], list[dict[str, Any]]], drift: bool,
) -> tuple[dict[str, Any], str] | None:
    """The child to apply again, and why: it was deleted while its owner lives, or (with `drift`)
    edited by hand away from what its owner says. A deleted owner's children, collected by the
    garbage collector, find no owner and are left alone; so is the Job of a finished owner
    (ttlSecondsAfterFinished may remove it, and nothing must run again)."""
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return None
    deleted = event["type"] == "DELETED"
    if not deleted and not drift:
        return None
    if deleted and body["kind"] == "Job" and (owner.get("status") or {}).get("phase") in FINISHED:
        return None
    wanted = (body["kind"], body["metadata"]["name"])
    for child in render(owner):
        if (child["kind"], child["metadata"]["name"]) != wanted:
            continue
        if deleted:
            return child, f"deleted by hand while its {owner['kind']} exists"
        if not is_subset({k: child[k] for k in ("spec", "data") if k in child}, plain(body)):
            return child, "edited by hand"
    return None


async def restore(found: tuple[dict[str, Any], str] | None, logger: logging.Logger) -> None:
    """Apply a child again (off the event loop: the client blocks), and say so."""
    if found is None:
        return
    child, why = found
    await asyncio.to_thread(kube.apply, child)
    logger.warning("restored %s %s/%s, %s", child["kind"], child["metadata"]["namespace"], child["metadata"]["name"], why)


class ChildRejected(Exception):
    """The API server refused a child the operator rendered from a spec the CRD accepted (say a
    `pod.affinity`, which the CRD passes through unchecked, that is not a valid Affinity)."""

    def __init__(self, child: dict[str, Any], error: kubernetes.client.ApiException):
        self.child = child
        try:
            detail = json.loads(error.body or "{}").get("message") or error.reason
        except ValueError:
            detail = error.reason
        super().__init__(f"the API server refused the {child['kind']} {child['metadata']['name']}: {detail}")


# What the operator changes on a Job that exists: the rest of a Job's spec is immutable. The
# rendered Job has no ttlSecondsAfterFinished (collect_finished_job carries it out), so one set by
# an earlier lmaas is removed. JOB_DEFAULTS: what the API server stores for a field left out.
JOB_MUTABLE = ("suspend", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished")
JOB_DEFAULTS = {"suspend": False, "backoffLimit": 6}


def job_changes(rendered: dict[str, Any], live: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Those of `fields` in which a live Job (as indexed) differs from the rendered Job, with the
    rendered values: what a merge patch must set."""
    def value(spec: dict[str, Any], field: str) -> Any:
        return spec.get(field, JOB_DEFAULTS.get(field))
    have = live.get("spec") or {}
    return {field: value(rendered["spec"], field) for field in fields
            if value(rendered["spec"], field) != value(have, field)}


def immutable_fields(error: kubernetes.client.ApiException) -> list[str]:
    """The fields an update was refused for because they cannot change (422, "field is immutable")."""
    if error.status != 422:
        return []
    try:
        causes = (json.loads(error.body or "{}").get("details") or {}).get("causes") or []
    except ValueError:
        return []
    return [cause.get("field", "") for cause in causes if "field is immutable" in cause.get("message", "")]


def apply_child(child: dict[str, Any], logger: logging.Logger) -> dict[str, Any]:
    """Server-side apply one child. A Job of this resource whose pod template the API server
    keeps (made by an earlier lmaas, or before the operator's worker image changed) runs on as it
    is, and only its mutable fields follow the spec: refusing the whole apply would fail a running
    job. A Job of the same name that is not this resource's (left by a deleted one) is refused."""
    try:
        return kube.apply(child)
    except kubernetes.client.ApiException as error:
        fields = immutable_fields(error) if child["kind"] == "Job" else []
        if not fields:
            raise
        meta = child["metadata"]
        live = kube.get(child["apiVersion"], "Job", meta["name"], meta["namespace"])
        owners = {ref["uid"] for ref in (live or {}).get("metadata", {}).get("ownerReferences", []) if ref.get("controller")}
        if owners != {ref["uid"] for ref in meta["ownerReferences"]}:
            raise
        logger.warning("the Job %s/%s keeps its %s, which cannot change (made by an earlier lmaas or another "
                       "worker image); suspend, activeDeadlineSeconds and backoffLimit follow the spec",
                       meta["namespace"], meta["name"], ", ".join(fields))
        return kube.merge_patch(child["apiVersion"], "Job", meta["name"], meta["namespace"],
                                {"spec": job_changes(child, live, JOB_MUTABLE)})


def apply_children(children: list[dict[str, Any]], logger: logging.Logger) -> list[dict[str, Any]]:
    """Server-side apply each child (apply_child) and return them as stored; a child the API
    server refuses as invalid raises ChildRejected (retrying could not help), anything else
    propagates for kopf to retry."""
    stored = []
    for child in children:
        try:
            stored.append(apply_child(child, logger))
        except kubernetes.client.ApiException as error:
            if error.status in (400, 422):
                raise ChildRejected(child, error) from error
            raise
    return stored


def rejected_status(body: kopf.Body, rejected: ChildRejected, condition_types: tuple[str, ...]) -> dict[str, Any]:
    """Failed, with the API server's own words: the resource stays so until its spec changes."""
    previous = plain(body.get("status") or {})
    generation = body["metadata"].get("generation")
    return with_phase({**previous, "observedGeneration": generation}, previous.get("conditions"), condition_types,
                      "Failed", "ChildRejected", str(rejected), generation, utcnow())


def still_rejected(body: kopf.Body) -> bool:
    """Whether this generation's children were refused (status recomputation would hide it)."""
    status = body.get("status") or {}
    return status.get("reason") == "ChildRejected" and status.get("observedGeneration") == body["metadata"].get("generation")


# --- what the indexes keep: memory grows with every object the operator watches -------------

def indexed_resource(body: kopf.Body) -> dict[str, Any]:
    """A custom resource for an index: identity, spec and status; no managedFields, no kopf state."""
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
        "metadata": {k: plain(meta[k]) for k in ("name", "namespace", "uid", "generation", "deletionTimestamp",
                                                   "labels", "creationTimestamp") if k in meta},
        "spec": plain(body.get("spec") or {}), "status": plain(body.get("status") or {}),
    }


def indexed_pod(body: kopf.Body) -> dict[str, Any]:
    """A pod for an index: what statuses read (name, completion index, how its containers are)."""
    meta = body["metadata"]
    return {"metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                         "annotations": plain(meta.get("annotations") or {})},
            "status": plain(body.get("status") or {})}


def indexed_workload(body: kopf.Body) -> dict[str, Any]:
    """A Job or Deployment for an index: generation, replica counts, a Job's mutable fields, template
    annotations, status."""
    meta, spec = body["metadata"], body.get("spec") or {}
    template_annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return {"metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "generation": meta.get("generation")},
            "spec": {**{k: plain(spec[k]) for k in ("replicas", "completions", "parallelism", *JOB_MUTABLE) if k in spec},
                     "template": {"metadata": {"annotations": plain(template_annotations)}}},
            "status": plain(body.get("status") or {})}
