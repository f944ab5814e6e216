"""Pieces every worker pod shares: labels, security context, env, placement, volumes."""
from __future__ import annotations

from typing import Any

from .api.spec import EnvVar, PodOptions, Resources
from .resource import CustomResource

MANAGED_BY = "lmaas-operator"
WORKER_UID = 10001


def labels(cr: CustomResource, component: str) -> dict[str, str]:
    """Labels of every child; `lmaas.io/<kind>: <name>` is what the operator selects on."""
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "lmaas",
        "app.kubernetes.io/component": component,
        f"lmaas.io/{cr.kind.lower()}": cr.name,
    }


def metadata(cr: CustomResource, name: str, component: str, extra_labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": cr.namespace,
        "labels": {**(extra_labels or {}), **labels(cr, component)},
        "ownerReferences": [cr.owner_reference()],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def pod_security_context() -> dict[str, Any]:
    """Meets the `restricted` Pod Security Standard; fsGroup makes the output volume writable."""
    return {
        "runAsNonRoot": True,
        "runAsUser": WORKER_UID,
        "runAsGroup": WORKER_UID,
        "fsGroup": WORKER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def env_vars(env: list[EnvVar] | None) -> list[dict[str, Any]]:
    """The user's env in core/v1 form (the CRD already refused reserved names)."""
    return [e.to_dict() for e in env or []]


def resources(spec_resources: Resources | None) -> dict[str, Any]:
    return spec_resources.to_dict() if spec_resources else {}


def gpu_count(spec_resources: Resources | None) -> int:
    """GPUs requested per pod, from limits (or requests) of nvidia.com/gpu or amd.com/gpu."""
    if not spec_resources:
        return 0
    for amounts in (spec_resources.limits or {}, spec_resources.requests or {}):
        for key in ("nvidia.com/gpu", "amd.com/gpu"):
            if key in amounts:
                return int(amounts[key])
    return 0


def placement(options: PodOptions | None) -> dict[str, Any]:
    """nodeSelector, tolerations, affinity, priority, scheduler and service account, as given."""
    if not options:
        return {}
    fields = options.to_dict()
    return {k: fields[k] for k in (
        "nodeSelector", "tolerations", "affinity", "priorityClassName", "schedulerName", "serviceAccountName",
    ) if k in fields}


def scratch_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable /tmp and a memory-backed /dev/shm (DataLoader workers and NCCL need it), since
    the root filesystem is read-only."""
    volumes = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "shm", "emptyDir": {"medium": "Memory"}},
    ]
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "shm", "mountPath": "/dev/shm"},
    ]
    return volumes, mounts


def parse_pvc_uri(uri: str) -> tuple[str, str]:
    """pvc://CLAIM/PATH → (CLAIM, PATH) with PATH relative and without a trailing slash."""
    if not uri.startswith("pvc://"):
        raise ValueError(f"not a pvc:// URI: {uri!r}")
    claim, _, path = uri[len("pvc://"):].partition("/")
    return claim, path.strip("/")
