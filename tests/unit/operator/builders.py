"""Helpers for builder tests: CRs as the API server would store them, and schema checks."""
from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate

from lmaas_operator.api.validation import validate
from lmaas_operator.resource import CustomResource

KUBERNETES_VERSION = "1.37.0"


def stored(doc: dict[str, Any], namespace: str = "ml", uid: str = "0b6f7c1e-uid") -> CustomResource:
    """The CR after `kubectl apply`: defaults applied, namespace and uid assigned."""
    body = validate(copy.deepcopy(doc))
    body["metadata"] = {**body["metadata"], "namespace": namespace, "uid": uid, "generation": 1}
    return CustomResource.from_body(body)


def assert_valid_kubernetes(*manifests: dict[str, Any]) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
