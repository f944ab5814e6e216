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
    ("v1", "Service"): ("services", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("kopf.dev/v1", "ClusterKopfPeering"): ("clusterkopfpeerings", False),
    ("kopf.dev/v1", "KopfPeering"): ("kopfpeerings", True),
}


# Connections kept open to the API server: one per handler thread and then some (the client's
# default, 5 per CPU, made a burst of 16 threads open and drop a TLS connection per request).
CONNECTIONS = 32


@functools.cache
def api_client() -> kubernetes.client.ApiClient:
    """A client for the cluster the operator runs in, or else the current kubeconfig's.

    Only the ApiClient: the generated API classes (CoreV1Api is some 30,000 lines) cost a
    second of CPU to import, which a status timer would otherwise pay in the middle of a burst."""
    configuration = kubernetes.client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    else:
        # KUBECONFIG is read now, not when the kubernetes package was imported.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    configuration.connection_pool_maxsize = CONNECTIONS
    return kubernetes.client.ApiClient(configuration)


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


def _send(
    client: kubernetes.client.ApiClient,
    method: str,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    content_type: str | None = None,
    body: str | dict | None = None,
) -> kubernetes.client.rest.RESTResponse:
    """One request through the API client's connection pool and credentials, its reply read;
    no generated API class (see api_client)."""
    headers = {"Accept": "application/json", **({"Content-Type": content_type} if content_type else {})}
    method, url, headers, _, _ = client.param_serialize(
        method, path, query_params=query, header_params=headers, auth_settings=["BearerToken"]
    )
    response = client.call_api(method, url, header_params=headers, body=body)
    response.read()
    return response


def apply(obj: dict[str, Any], client: kubernetes.client.ApiClient | None = None) -> dict[str, Any]:
    """Server-side apply `obj` as the operator's field manager and return the stored object."""
    client = client or api_client()
    meta = obj["metadata"]
    path = resource_path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    # JSON is YAML, and the REST layer sends a string body as it is.
    response = _send(
        client,
        "PATCH",
        path,
        [("fieldManager", FIELD_MANAGER), ("force", "true")],
        "application/apply-patch+yaml",
        json.dumps(obj),
    )
    return client.response_deserialize(response, {"200": "object", "201": "object"}).data


def get(
    api_version: str, kind: str, name: str, namespace: str | None, client: kubernetes.client.ApiClient | None = None
) -> dict[str, Any] | None:
    """The stored object, or None when there is none."""
    client = client or api_client()
    response = _send(client, "GET", resource_path(api_version, kind, name, namespace))
    if response.status == 404:
        return None
    return client.response_deserialize(response, {"200": "object"}).data


def merge_patch(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    patch: dict[str, Any],
    client: kubernetes.client.ApiClient | None = None,
) -> dict[str, Any]:
    """A JSON merge patch of a few fields (None removes one) as the operator's field manager;
    the stored object. For what server-side apply of the whole object cannot do (see
    handlers.apply.apply_child). The REST layer encodes a dict body as JSON."""
    client = client or api_client()
    response = _send(
        client,
        "PATCH",
        resource_path(api_version, kind, name, namespace),
        [("fieldManager", FIELD_MANAGER)],
        "application/merge-patch+json",
        patch,
    )
    return client.response_deserialize(response, {"200": "object"}).data


def pod_log(
    name: str, namespace: str, container: str, tail_lines: int, client: kubernetes.client.ApiClient | None = None
) -> str:
    """The last `tail_lines` lines of a container's log; ApiException when there is none yet.
    (The log is text whatever is asked; asking for text/plain gets 406.)"""
    client = client or api_client()
    response = _send(
        client,
        "GET",
        f"/api/v1/namespaces/{namespace}/pods/{name}/log",
        [("container", container), ("tailLines", tail_lines)],
    )
    return client.response_deserialize(response, {"200": "str"}).data


def delete(
    api_version: str, kind: str, name: str, namespace: str, client: kubernetes.client.ApiClient | None = None
) -> bool:
    """Delete a child the operator no longer wants, its own dependents (a Job's pods) in the
    background; False if it was already gone. (A Job deleted through the API without a policy
    would leave its pods behind.)"""
    client = client or api_client()
    response = _send(
        client, "DELETE", resource_path(api_version, kind, name, namespace), [("propagationPolicy", "Background")]
    )
    if response.status == 404:
        return False
    client.response_deserialize(response, {"200": "object", "202": "object"})
    return True
