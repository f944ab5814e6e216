"""lmaas resources for the local-run tests: documents as a user writes them, and as stored."""

from __future__ import annotations

import sys
import time
from typing import Any

from lmaas_api.validation import validate
from lmaas_operator.local.store import stored_body

API_VERSION = "lmaas.io/v1alpha1"
CREATED = "2026-11-29T09:00:00Z"


def train_job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 1, **spec},
    }


def compress_job(name: str, **model: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CompressJob",
        "metadata": {"name": name},
        "spec": {"model": model, "steps": [{"quantize": {"scheme": "int8"}}]},
    }


def model_service(name: str, **model: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ModelService", "metadata": {"name": name}, "spec": {"model": model}}


def stored(document: dict[str, Any], status: dict[str, Any] | None = None, now: str = CREATED) -> dict[str, Any]:
    """The resource as `lmaas run` stores it on its first run (defaults applied), with a status."""
    body = stored_body(validate(document), None, now)
    if status is not None:
        body["status"] = status
    return body


def names(bodies: list[dict[str, Any]]) -> list[str]:
    return [f"{b['kind']}/{b['metadata']['name']}" for b in bodies]


CLAIM_MOUNT = "/var/lib/lmaas/volumes/claim"
COMPLETION_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
SECRETS = {"creds": {"token": "t0ken"}}
POLL_SECONDS = 0.02


def job_manifest(script: str, completions: int = 1, **spec: Any) -> dict[str, Any]:
    """An Indexed batch/v1 Job shaped like the rendered ones, whose container runs `script` in Python.

    Its env holds a plain value (GREETING), the completion index (INDEX), a secret (TOKEN, from
    SECRETS) and a path in the claim's mount (OUT); /tmp is an emptyDir.
    """
    container = {
        "name": "w",
        "command": [sys.executable, "-c", script],
        "env": [
            {"name": "GREETING", "value": "hello"},
            {"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "OUT", "value": f"{CLAIM_MOUNT}/runs/out"},
        ],
        "volumeMounts": [{"name": "output", "mountPath": CLAIM_MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "w"},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": completions,
            "backoffLimit": 0,
            **spec,
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [
                        {"name": "output", "persistentVolumeClaim": {"claimName": "claim"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)


def container_state(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["status"]["containerStatuses"]
    return container["state"]


def run_to_the_end(job, within: float = 10.0) -> dict:
    """Start the job and step it as the runner does until it finishes; its Job status."""
    job.start()
    deadline = time.monotonic() + within
    while not job.finished:
        assert time.monotonic() < deadline, f"the job did not finish within {within}s: {job.manifest()['status']}"
        job.step()
        time.sleep(POLL_SECONDS)
    return job.manifest()["status"]
