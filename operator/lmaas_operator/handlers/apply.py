"""Applying a resource's children: one server-side apply each; a Job whose pod template cannot
change follows in its mutable fields; a child the API server refuses as invalid is named."""

from __future__ import annotations

import json
import logging
from typing import Any

import kubernetes

from .. import kube


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
# rendered Job has no ttlSecondsAfterFinished (handlers.finished carries it out), so one set by an
# earlier lmaas is removed. JOB_DEFAULTS: what the API server stores for a field left out.
JOB_MUTABLE = ("suspend", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished")
JOB_DEFAULTS = {"suspend": False, "backoffLimit": 6}


def job_changes(rendered: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The mutable fields in which a live Job differs from the rendered Job, with the rendered
    values: what a merge patch must set. `suspend` only where the rendered Job sets it: a Job that
    leaves it out (a CompressJob's) leaves it to a queue such as Kueue, as server-side apply does."""

    def value(spec: dict[str, Any], field: str) -> Any:
        return spec.get(field, JOB_DEFAULTS.get(field))

    fields = [field for field in JOB_MUTABLE if field != "suspend" or "suspend" in rendered["spec"]]
    have = live.get("spec") or {}
    return {
        field: value(rendered["spec"], field)
        for field in fields
        if value(rendered["spec"], field) != value(have, field)
    }


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
        owners = {
            ref["uid"] for ref in (live or {}).get("metadata", {}).get("ownerReferences", []) if ref.get("controller")
        }
        if owners != {ref["uid"] for ref in meta["ownerReferences"]}:
            raise
        logger.warning(
            "the Job %s/%s keeps its %s, which cannot change (made by an earlier lmaas or another "
            "worker image); suspend, activeDeadlineSeconds and backoffLimit follow the spec",
            meta["namespace"],
            meta["name"],
            ", ".join(fields),
        )
        return kube.merge_patch(
            child["apiVersion"], "Job", meta["name"], meta["namespace"], {"spec": job_changes(child, live)}
        )


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
