"""Helpers for builder tests: CRs as the API server would store them, and schema checks."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate

from lmaas_api import contract
from lmaas_api.resource import CustomResource
from lmaas_api.validation import validate

KUBERNETES_VERSION = "1.37.0"


def stored(
    doc: dict[str, Any], namespace: str = "ml", uid: str = "0b6f7c1e-uid", generation: int = 1
) -> CustomResource:
    """The CR after `kubectl apply`: defaults applied, namespace, uid and generation assigned."""
    body = validate(copy.deepcopy(doc))
    body["metadata"] = {**body["metadata"], "namespace": namespace, "uid": uid, "generation": generation}
    return CustomResource.from_body(body)


def assert_valid_kubernetes(*manifests: dict[str, Any]) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def projected_config(template: dict[str, Any]) -> dict[str, Any]:
    """The worker's config document, as the kubelet writes it from the pod's downward API volume
    (the pod-template annotation it projects), after checking that the container is told where."""
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    (item,) = volumes["config"]["downwardAPI"]["items"]
    assert item["path"] == contract.CONFIG_FILE
    assert item["fieldRef"]["fieldPath"] == "metadata.annotations['lmaas.io/config']"
    (container,) = template["spec"]["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"] == {"name": "config", "mountPath": contract.CONFIG_MOUNT, "readOnly": True}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[contract.CONFIG_ENV] == f"{contract.CONFIG_MOUNT}/{contract.CONFIG_FILE}"
    return json.loads(template["metadata"]["annotations"]["lmaas.io/config"])
