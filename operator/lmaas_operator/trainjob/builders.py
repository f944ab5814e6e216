"""TrainJob → its children, as pure data: a headless Service and an Indexed Job whose pod template
carries the TrainJob itself for the worker to read (pods.CONFIG_ANNOTATION).

Names are deterministic (both are called after the TrainJob), so an operator that restarts
re-applies the same objects instead of making new ones.
"""

from __future__ import annotations

from typing import Any

from lmaas_api import contract
from lmaas_api.resource import CustomResource
from lmaas_api.spec import TrainJobSpec

from .. import pods
from ..config import OperatorConfig
from ..references import Resolution

COMPONENT = "trainer"
CONTAINER = "trainer"
# Checks the configuration (exit 78 → podFailurePolicy fails the Job at once), then runs torchrun.
WORKER_COMMAND = ["lmaas", "train", "--launch"]
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# Not in the pods' config document, which is part of the Job's immutable pod template: what may
# change while the Job runs (the CRD's immutability rule), and `pod` (the pod's own placement,
# labels and annotations, which would be in the pod twice). The worker reads none of them.
LEFT_OUT = ("suspend", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "pod")

TrainJob = CustomResource[TrainJobSpec]


def rendezvous_host(cr: TrainJob) -> str:
    """Rank 0's stable DNS name: pod host name <job>-0 in the headless Service's subdomain."""
    return f"{cr.name}-0.{cr.name}"


def backend(cr: TrainJob) -> str:
    return "nccl" if pods.gpu_count(cr.spec.resources) > 0 else "gloo"


def torchrun_env(cr: TrainJob) -> list[dict[str, Any]]:
    """torchrun's contract, set by the operator and never by the user (the CRD refuses clashes)."""
    low, high = cr.spec.node_range
    return [
        {"name": "PET_NNODES", "value": f"{low}:{high}" if cr.spec.elastic else str(high)},
        {"name": "PET_NPROC_PER_NODE", "value": str(cr.spec.procs_per_node)},
        {"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
        {"name": "PET_RDZV_BACKEND", "value": "c10d"},
        {"name": "PET_RDZV_ENDPOINT", "value": f"{rendezvous_host(cr)}:{contract.RDZV_PORT}"},
        {"name": "PET_RDZV_ID", "value": cr.uid},
        {"name": "PET_MAX_RESTARTS", "value": str(cr.spec.max_restarts)},
        # torchrun's shared rendezvous store keeps a failed attempt's keys, so restarted workers
        # would wait for dead peers (pytorch/pytorch#135712): give each attempt its own store.
        {"name": "TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "value": "1"},
    ]


def render_service(cr: TrainJob) -> dict[str, Any]:
    """Headless, and publishing pods before they are ready: rank 0 must resolve while the
    agents rendezvous, which is before any of them could be called ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pods.metadata(cr, cr.name, COMPONENT),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": pods.labels(cr, COMPONENT),
            "ports": [{"name": "c10d", "port": contract.RDZV_PORT, "targetPort": contract.RDZV_PORT}],
        },
    }


def render_job(cr: TrainJob, config: OperatorConfig) -> dict[str, Any]:
    spec = cr.spec
    _, high = spec.node_range
    claim, path = pods.output_location(cr, config.artifact_claim)
    volumes = [{"name": "output", "persistentVolumeClaim": {"claimName": claim}}]
    mounts = [{"name": "output", "mountPath": f"{contract.VOLUMES_ROOT}/{claim}"}]
    model_folder = []
    if spec.model is not None and spec.model.hf is not None and spec.model.hf.uri is not None:
        # the Hugging Face model folder to train from: read-only, unless on the output's claim
        model_claim, model_path = pods.parse_pvc_uri(spec.model.hf.uri)
        model_folder = [{"name": contract.INPUT_DIR_ENV, "value": contract.volume_path(model_claim, model_path)}]
        if model_claim != claim:
            volumes.append({"name": "model", "persistentVolumeClaim": {"claimName": model_claim, "readOnly": True}})
            mounts.append({"name": "model", "mountPath": f"{contract.VOLUMES_ROOT}/{model_claim}", "readOnly": True})
    env = [
        *torchrun_env(cr),
        pods.config_env(),
        {"name": contract.OUTPUT_DIR_ENV, "value": contract.volume_path(claim, path)},
        {"name": contract.OUTPUT_URI_ENV, "value": pods.output_uri(cr, config.artifact_claim)},
        {"name": contract.BACKEND_ENV, "value": backend(cr)},
        *model_folder,
        *pods.env_vars(spec.env),
    ]
    container = pods.worker_container(
        CONTAINER,
        spec.image or config.worker_image,
        list(spec.command) if spec.command else WORKER_COMMAND,
        env,
        spec.resources,
        mounts,
    )
    container["ports"] = [{"name": "c10d", "containerPort": contract.RDZV_PORT}]
    return pods.worker_job(
        cr,
        COMPONENT,
        container,
        volumes,
        [contract.EXIT_CONFIG_ERROR],
        cr.as_document(leave_out=LEFT_OUT),
        job_spec={
            "completionMode": "Indexed",
            "completions": high,
            "parallelism": high,
            # Rank 0's agent finishing means training finished; the others are then let go.
            "successPolicy": {"rules": [{"succeededIndexes": "0"}]},
            "suspend": spec.suspend,
        },
        pod_spec={"subdomain": cr.name},
    )


def render_children(cr: TrainJob, config: OperatorConfig, model: Resolution | None = None) -> list[dict[str, Any]]:
    """Everything a TrainJob owns, in the order to apply it (rank 0's name resolves through the
    Service before the Job's pods start). There is no input `model`: a TrainJob's model is a
    definition in its spec (the kinds' render_children share one signature)."""
    return [render_service(cr), render_job(cr, config)]
