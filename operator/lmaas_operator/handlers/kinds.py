"""The one shape of every kind's handlers. A kind module describes its kind (`Kind`) and
`register`s it, which gives it:

- `reconcile_<kind>` on create, update (spec) and resume, and `refresh_<kind>_status`, a status
  timer. Both see the resource through the operator's indexes, apply its children when what they
  are made from (the spec's generation, the input model) changed since this operator applied
  them, and write the status when it changed; the timer keeps the observedGeneration it found;
- indexes of the kind, of its Job or Deployment and of its pods (indexes.index_kind);
- a handler that applies a child again when it is deleted by hand (or edited by hand: `drift`);
- the forgetting of a deleted resource's metrics.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import kopf

from lmaas_api.clock import utc_now
from lmaas_api.crds import GROUP, VERSION
from lmaas_api.resource import CustomResource

from .. import kube, metrics, pods, progress
from ..config import OperatorConfig
from ..job_status import FINISHED
from ..references import Lookup, Resolution
from .apply import ChildRejected, apply_children
from .bodies import parse_resource, plain
from .finished import collect_finished_job, ran_to_the_end
from .indexes import first, index_kind, pods_index, workloads_index
from .restore import child_to_restore, deleted, mark_compared, not_compared, restore
from .status import keep_observed_generation, rejected_status, still_rejected
from .timers import status_timer


class Watched(NamedTuple):
    """A kind of child the operator watches."""

    group: str
    version: str
    plural: str
    kind: str


JOB = Watched("batch", "v1", "jobs", "Job")
SERVICE = Watched("", "v1", "services", "Service")
DEPLOYMENT = Watched("apps", "v1", "deployments", "Deployment")
AUTOSCALER = Watched("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
DISRUPTION_BUDGET = Watched("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")


@dataclass(frozen=True)
class Observed:
    """One resource as a handler call sees it: typed, with its status as stored and what the
    indexes hold of its Job or Deployment (`workload`) and its pods."""

    cr: CustomResource
    previous: dict[str, Any]
    workload: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = dataclasses.field(default_factory=list)


ModelOf = Callable[[Observed, Lookup], Resolution | None]
StatusOf = Callable[[Observed, Resolution | None, list[dict[str, Any]], OperatorConfig, str], dict[str, Any]]


def no_model(observed: Observed, producers: Lookup) -> None:
    """For a kind whose model is a definition in its spec, not another resource's artifact."""
    return None


def no_optional_children(cr: CustomResource) -> list[tuple[str, str, str]]:
    return []


@dataclass(frozen=True)
class Kind:
    """What the handlers of one kind need to know about it."""

    name: str
    plural: str
    workload: Watched
    """Its Job or Deployment, whose status its own follows."""
    children: tuple[Watched, ...]
    """Every kind of child it owns (each is applied again when deleted by hand)."""
    condition_types: tuple[str, ...]
    render_children: Callable[[CustomResource, OperatorConfig, Resolution | None], list[dict[str, Any]]]
    """The kind's builders' render_children(cr, config, model)."""
    compute_status: StatusOf
    """(observed, model, rank 0's new progress lines, config, now) → the whole status."""
    model: ModelOf = no_model
    """The input model (looked up among producers), None for a kind that has none."""
    progress_container: str | None = None
    """The container whose log has rank 0's progress lines, if the status reads them."""
    unwanted_children: Callable[[CustomResource], list[tuple[str, str, str]]] = no_optional_children
    """(apiVersion, kind, name) of optional children the spec no longer wants: deleted."""
    drift: bool = False
    """Whether a child edited by hand away from what its owner wants is applied again too."""

    @property
    def label(self) -> str:
        return pods.owner_label(self.name)


def producers(namespace: str, indexes: dict[str, Any]) -> Lookup:
    """Look producers up in the operator's indexes of each kind (no API call per reconcile)."""

    def lookup(kind: str, name: str) -> dict[str, Any] | None:
        return first(indexes[f"{kind.lower()}s"], (namespace, name))

    return lookup


def observe(kind: Kind, body: kopf.Body, indexes: dict[str, Any]) -> Observed:
    cr = parse_resource(body)
    key = (cr.namespace, cr.name)
    return Observed(
        cr,
        plain(body.get("status") or {}),
        first(indexes[workloads_index(kind.name)], key),
        list(indexes[pods_index(kind.name)].get(key, [])),
    )


def wanted_children(
    kind: Kind, owner: dict[str, Any], config: OperatorConfig, indexes: dict[str, Any]
) -> list[dict[str, Any]]:
    """What a resource (as indexed) wants to own now: nothing while its input model is not ready."""
    observed = Observed(parse_resource(owner), owner.get("status") or {})
    model = kind.model(observed, producers(observed.cr.namespace, indexes))
    if model is not None and model.state != "ready":
        return []
    return kind.render_children(observed.cr, config, model)


def apply_changed(
    kind: Kind, observed: Observed, model: Resolution | None, memo: kopf.Memo, logger: logging.Logger
) -> Observed:
    """Apply the children if what they are made from changed since this operator applied them
    (the resource's memo, empty after a restart: resuming applies them again) and delete the
    optional ones the spec no longer wants; `observed` with its workload as just applied."""
    made_from = (observed.cr.generation, model)
    if memo.get("applied") == made_from:
        return observed
    cr = observed.cr
    stored = apply_children(kind.render_children(cr, memo.config, model), logger)
    # A first-generation spec never wanted anything else: no deletes (each a 404) to send.
    for api_version, child_kind, name in kind.unwanted_children(cr) if cr.generation > 1 else []:
        if kube.delete(api_version, child_kind, name, cr.namespace):
            logger.info("deleted %s %s, no longer in the spec", child_kind, name)
    memo["applied"] = made_from
    logger.info(
        "applied the children of %s %s/%s%s",
        cr.kind,
        cr.namespace,
        cr.name,
        f" for the model {model.uri}" if model else "",
    )
    return dataclasses.replace(observed, workload=next(c for c in stored if c["kind"] == kind.workload.kind))


def progress_lines(kind: Kind, observed: Observed, memo: kopf.Memo, logger: logging.Logger) -> list[dict[str, Any]]:
    """Rank 0's progress lines seen since the last read, while a pod of an unfinished resource runs."""
    if kind.progress_container is None or observed.previous.get("phase") in FINISHED:
        return []
    if not any((pod.get("status") or {}).get("phase") == "Running" for pod in observed.pods):
        return []
    return progress.read_rank0_events(observed.pods, kind.progress_container, memo, logger)


def handle(
    kind: Kind,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: logging.Logger,
    indexes: dict[str, Any],
    timer: bool,
) -> None:
    """One call of either handler (`timer`: the status timer's)."""
    if still_rejected(body):
        return
    observed = observe(kind, body, indexes)
    model = kind.model(observed, producers(observed.cr.namespace, indexes))
    finished = ran_to_the_end(observed.previous)
    if finished:
        # Nothing runs again: its Job may be gone (ttlSecondsAfterFinished) and would start over.
        collect_finished_job(observed.cr, observed.workload, observed.previous, logger)
    elif model is None or model.state == "ready":
        try:
            observed = apply_changed(kind, observed, model, memo, logger)
        except ChildRejected as rejected:
            patch["status"] = rejected_status(body, rejected, kind.condition_types)
            logger.error("%s", rejected)  # also an Event on the resource
            return
    status = kind.compute_status(observed, model, progress_lines(kind, observed, memo, logger), memo.config, utc_now())
    if finished and status["phase"] not in FINISHED:
        return  # a refresh may complete a result, never undo it (its Job and pods go in the end)
    if timer:
        status = keep_observed_generation(status, observed.previous)
    if status != observed.previous:
        patch["status"] = status


def register(kind: Kind) -> tuple[Callable[..., None], Callable[..., None]]:
    """Register the kind's handlers and indexes with kopf; (reconcile, refresh) handlers."""
    short = kind.name.lower()
    reconciling, refreshing = f"reconcile_{short}", f"refresh_{short}_status"
    index_kind(kind.name, kind.plural, kind.label, kind.workload[:3])

    @metrics.measured(kind.name, reconciling)
    def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **kwargs: Any) -> None:
        handle(kind, body, patch, memo, logger, kwargs, timer=False)

    @metrics.measured(kind.name, refreshing)
    def refresh(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **kwargs: Any) -> None:
        handle(kind, body, patch, memo, logger, kwargs, timer=True)

    kopf.on.resume(GROUP, VERSION, kind.plural, id=reconciling)(reconcile)
    kopf.on.create(GROUP, VERSION, kind.plural, id=reconciling)(reconcile)
    kopf.on.update(GROUP, VERSION, kind.plural, field="spec", id=reconciling)(reconcile)
    status_timer(kind.plural, id=refreshing)(refresh)

    # Raw watch events, not kopf's change handlers: those would annotate every child to remember it.
    async def restore_child(
        event: kopf.RawEvent,
        namespace: str,
        labels: dict[str, str],
        body: kopf.Body,
        memo: kopf.Memo,
        logger: logging.Logger,
        **kwargs: Any,
    ) -> None:
        owner = first(kwargs[kind.plural], (namespace, labels[kind.label]))
        wanted = wanted_children(kind, owner, memo.config, kwargs) if owner is not None else []
        await restore(child_to_restore(event, body, owner, wanted, kind.drift), logger)
        if kind.drift and any(
            (c["kind"], c["metadata"]["name"]) == (body["kind"], body["metadata"]["name"]) for c in wanted
        ):
            mark_compared(body, memo)

    for child in kind.children:
        kopf.on.event(
            child.group,
            child.version,
            child.plural,
            labels={kind.label: kopf.PRESENT},
            when=not_compared if kind.drift else deleted,
            id=f"restore_{short}_child",
        )(restore_child)

    async def forget_deleted(namespace: str, name: str, uid: str, **_: Any) -> None:
        metrics.forget(kind.name, namespace, name, uid)

    kopf.on.event(GROUP, VERSION, kind.plural, when=deleted, id=f"forget_deleted_{short}")(forget_deleted)
    return reconcile, refresh
