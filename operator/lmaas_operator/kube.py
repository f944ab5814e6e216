"""The operator's one way to write objects: server-side apply, idempotent, with a field owner.

A restarted operator re-applies the same deterministic objects and converges; there is no
create-or-ignore-409 anywhere.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any

import kubernetes

FIELD_MANAGER = "lmaas-operator"

# (apiVersion, kind) → (plural, namespaced) for every kind the operator writes. A fixed table
# instead of API discovery: nothing to fetch at start-up, and RBAC reads like this list.
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("kopf.dev/v1", "ClusterKopfPeering"): ("clusterkopfpeerings", False),
    ("kopf.dev/v1", "KopfPeering"): ("kopfpeerings", True),
}


@functools.cache
def api_client() -> kubernetes.client.ApiClient:
    """A client for the cluster the operator runs in, or else the current kubeconfig's."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        return kubernetes.client.ApiClient(configuration)
    # KUBECONFIG is read now, not when the kubernetes package was imported.
    return kubernetes.config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


def resource_path(api_version: str, kind: str, name: str, namespace: str | None = None) -> str:
    try:
        plural, namespaced = RESOURCES[(api_version, kind)]
    except KeyError:
        raise ValueError(f"the operator does not write {kind} ({api_version})") from None
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise ValueError(f"{kind} {name} needs a namespace")
        return f"{base}/namespaces/{namespace}/{plural}/{name}"
    return f"{base}/{plural}/{name}"


def apply(obj: dict[str, Any], client: kubernetes.client.ApiClient | None = None) -> dict[str, Any]:
    """Server-side apply `obj` as the operator's field manager and return the stored object."""
    client = client or api_client()
    meta = obj["metadata"]
    path = resource_path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    method, url, headers, _, _ = client.param_serialize(
        "PATCH", path,
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    # JSON is YAML, and the REST layer sends a string body as it is.
    response = client.call_api(method, url, header_params=headers, body=json.dumps(obj))
    response.read()
    return client.response_deserialize(response, {"200": "object", "201": "object"}).data


def delete(api_version: str, kind: str, name: str, namespace: str,
           client: kubernetes.client.ApiClient | None = None) -> bool:
    """Delete a child the operator no longer wants; False if it was already gone."""
    client = client or api_client()
    method, url, headers, _, _ = client.param_serialize(
        "DELETE", resource_path(api_version, kind, name, namespace),
        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
    )
    response = client.call_api(method, url, header_params=headers)
    response.read()
    if response.status == 404:
        return False
    client.response_deserialize(response, {"200": "object", "202": "object"})
    return True
