"""What the handlers read instead of calling the API server: kopf indexes of each kind, of its Job
or Deployment and of its pods, keeping only what the handlers read (memory grows with every
object the operator watches)."""

from __future__ import annotations

from typing import Any

import kopf

from lmaas_api.crds import GROUP, VERSION

from .bodies import plain


def workloads_index(kind: str) -> str:
    """The id of the index of a kind's Job or Deployment, by (namespace, owner name)."""
    return f"{kind.lower()}_workloads"


def pods_index(kind: str) -> str:
    """The id of the index of a kind's pods, by (namespace, owner name)."""
    return f"{kind.lower()}_pods"


def index_kind(kind: str, plural: str, label: str, workload: tuple[str, str, str]) -> None:
    """Index the kind itself under its plural (what timers' `exists` and producer lookups read),
    its Job or Deployment (`workload`: group, version, plural) and its pods, both by the owner's
    name in `label`."""
    owned = {label: kopf.PRESENT}

    async def index_workload(namespace, labels, body, **_):
        return {(namespace, labels[label]): indexed_workload(body)}

    async def index_pods(namespace, labels, body, **_):
        return {(namespace, labels[label]): indexed_pod(body)}

    async def index_resource(namespace, name, body, **_):
        return {(namespace, name): indexed_resource(body)}

    kopf.index(*workload, labels=owned, id=workloads_index(kind))(index_workload)
    kopf.index("", "v1", "pods", labels=owned, id=pods_index(kind))(index_pods)
    kopf.index(GROUP, VERSION, plural, id=plural)(index_resource)


def first(index: kopf.Index, key: Any) -> Any:
    """The one value an index holds under `key`, or None."""
    return next(iter(index.get(key, [])), None)


def indexed_resource(body: kopf.Body) -> dict[str, Any]:
    """A custom resource for an index: identity, spec and status; no managedFields, no kopf state."""
    meta = body["metadata"]
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            k: plain(meta[k])
            for k in ("name", "namespace", "uid", "generation", "deletionTimestamp", "labels", "creationTimestamp")
            if k in meta
        },
        "spec": plain(body.get("spec") or {}),
        "status": plain(body.get("status") or {}),
    }


def indexed_pod(body: kopf.Body) -> dict[str, Any]:
    """A pod for an index: what statuses read (name, completion index, how its containers are)."""
    meta = body["metadata"]
    return {
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "annotations": plain(meta.get("annotations") or {}),
        },
        "status": plain(body.get("status") or {}),
    }


def indexed_workload(body: kopf.Body) -> dict[str, Any]:
    """A Job or Deployment for an index: generation, a Deployment's replicas and the annotations of
    its template (the artifact it serves), status."""
    meta, spec = body["metadata"], body.get("spec") or {}
    template_annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return {
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "generation": meta.get("generation")},
        "spec": {
            **({"replicas": spec["replicas"]} if "replicas" in spec else {}),
            "template": {"metadata": {"annotations": plain(template_annotations)}},
        },
        "status": plain(body.get("status") or {}),
    }
