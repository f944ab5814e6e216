"""Pieces every worker pod shares: labels, security context, env, placement, volumes."""

from __future__ import annotations

import json
from typing import Any

from lmaas_api import contract
from lmaas_api.resource import CustomResource
from lmaas_api.spec import EnvVar, PodOptions, Resources

MANAGED_BY = "lmaas-operator"
WORKER_UID = 10001
CONFIG_ANNOTATION = "lmaas.io/config"
"""Pod-template annotation holding the worker's config document; the kubelet writes it to
CONFIG_MOUNT/CONFIG_FILE (a downward API volume), so that a resource needs no ConfigMap: one
object fewer to apply, watch and restore per resource, and no way for the two to disagree."""


def owner_label(kind: str) -> str:
    """The label naming a child's owner of `kind`: what the operator selects and indexes on."""
    return f"lmaas.io/{kind.lower()}"


def labels(cr: CustomResource, component: str) -> dict[str, str]:
    """Labels of every child; owner_label is what the operator selects on."""
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "lmaas",
        "app.kubernetes.io/component": component,
        owner_label(cr.kind): cr.name,
    }


def metadata(
    cr: CustomResource,
    name: str,
    component: str,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
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


def config_annotation(document: dict[str, Any]) -> dict[str, str]:
    """The pod-template annotation of a worker's config document (see CONFIG_ANNOTATION). Any
    change of it is a change of the template: a new rollout for a Deployment, refused by the API
    server for a Job, so a document holds only what cannot change while its pods run."""
    return {CONFIG_ANNOTATION: json.dumps(document, sort_keys=True, separators=(",", ":"))}


def config_env() -> dict[str, str]:
    return {"name": contract.CONFIG_ENV, "value": f"{contract.CONFIG_MOUNT}/{contract.CONFIG_FILE}"}


def config_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the config file, projected from the pod's CONFIG_ANNOTATION."""
    field = f"metadata.annotations['{CONFIG_ANNOTATION}']"
    volume = {
        "name": "config",
        "downwardAPI": {"items": [{"path": contract.CONFIG_FILE, "fieldRef": {"fieldPath": field}}]},
    }
    return volume, {"name": "config", "mountPath": contract.CONFIG_MOUNT, "readOnly": True}


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
    return {
        k: fields[k]
        for k in (
            "nodeSelector",
            "tolerations",
            "affinity",
            "priorityClassName",
            "schedulerName",
            "serviceAccountName",
        )
        if k in fields
    }


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
    claim, _, path = uri[len("pvc://") :].partition("/")
    return claim, path.strip("/")


def worker_container(
    name: str,
    image: str,
    command: list[str],
    env: list[dict[str, Any]],
    spec_resources: Resources | None,
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    """A worker container: restricted, with the termination message the status reads."""
    return {
        "name": name,
        "image": image,
        "command": command,
        "env": [{"name": "HOME", "value": "/tmp"}, *env],
        "resources": resources(spec_resources),
        "securityContext": container_security_context(),
        "terminationMessagePath": contract.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }


def worker_job(
    cr: CustomResource,
    component: str,
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    fail_on_exit_codes: list[int],
    document: dict[str, Any],
    job_spec: dict[str, Any] | None = None,
    pod_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Job running one worker container per pod, for the kinds whose specs share max_restarts,
    active_deadline_seconds and pod, reading `document` as its config file (the container's env
    has config_env()). Not ttl_seconds_after_finished: the Job controller would delete the Job
    before the operator read its result (handlers.finished.collect_finished_job)."""
    spec = cr.spec
    user_labels = spec.pod.labels if spec.pod else None
    user_annotations = spec.pod.annotations if spec.pod else None
    scratch, scratch_mounts = scratch_volumes()
    config, config_mount = config_volume()
    container = {**container, "volumeMounts": [config_mount, *container["volumeMounts"], *scratch_mounts]}
    body: dict[str, Any] = {
        **(job_spec or {}),
        "backoffLimit": spec.max_restarts,
        "podFailurePolicy": {
            "rules": [
                # Exits that rerunning cannot change (bad configuration, a broken bound): fail now.
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": container["name"], "operator": "In", "values": fail_on_exit_codes},
                },
                # A pod evicted or preempted did nothing wrong: retry without spending the budget.
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]
        },
        "template": {
            "metadata": {
                "labels": {**(user_labels or {}), **labels(cr, component)},
                "annotations": {**(user_annotations or {}), **config_annotation(document)},
            },
            "spec": {
                **(pod_spec or {}),
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": [config, *volumes, *scratch],
                **placement(spec.pod),
            },
        },
    }
    if spec.active_deadline_seconds is not None:
        body["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(cr, cr.name, component, user_labels, user_annotations),
        "spec": body,
    }


def output_location(cr: CustomResource, artifact_claim: str) -> tuple[str, str]:
    """(claim, path) of a job's output: spec.output.uri, or the operator's artifact claim under
    <plural>/<namespace>/<name>."""
    if cr.spec.output and cr.spec.output.uri:
        return parse_pvc_uri(cr.spec.output.uri)
    return artifact_claim, f"{cr.kind.lower()}s/{cr.namespace}/{cr.name}"


def output_uri(cr: CustomResource, artifact_claim: str) -> str:
    """output_location as pvc://CLAIM/PATH: what the worker is told and artifact URIs start with."""
    claim, path = output_location(cr, artifact_claim)
    return f"pvc://{claim}/{path}"
