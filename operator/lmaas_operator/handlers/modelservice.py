"""ModelService handlers: wait for the model, deploy it, keep the children as declared, and
compute the status.

One level-based reconcile runs on create, update (spec, including `kubectl scale`), resume and
every STATUS_INTERVAL. It applies the children only when what they should be has changed (a spec
edit, a newer artifact from the producer), and removes an autoscaler or disruption budget the spec
no longer asks for.
"""
from __future__ import annotations

import hashlib
import json
import logging

import kopf

from .. import kube, metrics
from ..modelservice.builders import render_children, unwanted_children
from ..modelservice.status import CONDITION_TYPES, compute_status
from ..references import resolve_model
from .common import (
    GROUP, VERSION, ChildRejected, apply_children, child_to_restore, first, index_kind,
    parse_resource, plain, status_timer, rejected_status, restore, still_rejected, utcnow,
)
from .compressjob import producers

LABEL = "lmaas.io/modelservice"

index_kind("ModelService", "modelservices", LABEL, ("apps", "v1", "deployments"), "modelservice_deployments",
           "modelservice_pods")


def _desired(owner: dict, memo: kopf.Memo, trainjobs: kopf.Index, compressjobs: kopf.Index):
    cr = parse_resource(owner)
    resolution = resolve_model(cr.spec.model, producers(cr.namespace, trainjobs, compressjobs), ("ModelService", cr.name))
    children = render_children(cr, memo.config.worker_image, resolution) if resolution.state == "ready" else []
    return cr, resolution, children


@kopf.on.resume(GROUP, VERSION, "modelservices")
@kopf.on.create(GROUP, VERSION, "modelservices")
@kopf.on.update(GROUP, VERSION, "modelservices", field="spec")
@status_timer("modelservices")
@metrics.measured("ModelService")
def reconcile_modelservice(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
    modelservice_deployments: kopf.Index, modelservice_pods: kopf.Index,
    trainjobs: kopf.Index, compressjobs: kopf.Index, **_,
) -> None:
    if still_rejected(body):
        return
    cr, resolution, children = _desired(plain(body), memo, trainjobs, compressjobs)
    key = (cr.namespace, cr.name)
    deployment = first(modelservice_deployments, key)
    if children:
        fingerprint = hashlib.sha256(json.dumps(children, sort_keys=True).encode()).hexdigest()
        if memo.get("applied") != fingerprint:
            try:
                stored = apply_children(children, logger)
            except ChildRejected as rejected:
                patch["status"] = rejected_status(body, rejected, CONDITION_TYPES)
                logger.error("%s", rejected)
                return
            # A first-generation spec never wanted anything else: no deletes (each a 404) to send.
            for api_version, kind, name in unwanted_children(cr) if cr.generation > 1 else []:
                if kube.delete(api_version, kind, name, cr.namespace):
                    logger.info("deleted %s %s, no longer in the spec", kind, name)
            memo["applied"] = fingerprint
            # The status of what was just applied (a rollout is Deploying now, not at the next refresh).
            deployment = next(child for child in stored if child["kind"] == "Deployment")
            logger.info("applied the children of ModelService %s/%s serving %s", cr.namespace, cr.name, resolution.uri)
    previous = plain(body.get("status") or {})
    status = compute_status(cr, resolution, deployment, list(modelservice_pods.get(key, [])), previous, utcnow())
    if status != previous:
        patch["status"] = status


def not_compared(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_) -> bool:
    """Whether a child's event may need it applied again: a deletion, or a generation not yet
    compared with what its owner wants (the child's memo). Most events of a Deployment are status
    updates of a generation already compared; an edit by hand moves the generation on. A kind
    without generations is compared at every event. A filter, so that kopf makes no handler call
    for the others."""
    generation = body["metadata"].get("generation")
    return event["type"] == "DELETED" or generation is None or memo.get("compared_generation") != generation


# Raw watch events: a child deleted or edited by hand is applied again.
@kopf.on.event("", "v1", "services", labels={LABEL: kopf.PRESENT}, when=not_compared)
@kopf.on.event("apps", "v1", "deployments", labels={LABEL: kopf.PRESENT}, when=not_compared)
@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels={LABEL: kopf.PRESENT}, when=not_compared)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels={LABEL: kopf.PRESENT}, when=not_compared)
async def restore_modelservice_child(event, namespace, labels, body, memo: kopf.Memo, logger,
                                     modelservices: kopf.Index, trainjobs: kopf.Index, compressjobs: kopf.Index,
                                     **_) -> None:
    owner = first(modelservices, (namespace, labels[LABEL]))
    wanted = _desired(owner, memo, trainjobs, compressjobs)[2] if owner is not None else []
    await restore(child_to_restore(event, body, owner, lambda _: wanted, drift=True), logger)
    if any((child["kind"], child["metadata"]["name"]) == (body["kind"], body["metadata"]["name"]) for child in wanted):
        memo["compared_generation"] = body["metadata"].get("generation")
