"""CompressJob → its child, as pure data: a one-pod Job whose pod template carries the CompressJob
and its input for the worker to read (pods.CONFIG_ANNOTATION), rendered once the input model is
known (its producer has succeeded)."""

from __future__ import annotations

from typing import Any

from lmaas_api import contract
from lmaas_api.resource import CustomResource
from lmaas_api.spec import CompressJobSpec

from .. import pods
from ..config import OperatorConfig
from ..references import Resolution

COMPONENT = "compressor"
CONTAINER = "compressor"
WORKER_COMMAND = ["lmaas", "compress"]
# Not in the pods' config document, which is part of the Job's immutable pod template: what may
# change while the Job runs (the CRD's immutability rule), and `pod` (the pod's own placement,
# labels and annotations, which would be in the pod twice). The worker reads none of them.
LEFT_OUT = ("activeDeadlineSeconds", "ttlSecondsAfterFinished", "maxRestarts", "pod")

CompressJob = CustomResource[CompressJobSpec]


def config_document(cr: CompressJob, input_uri: str) -> dict[str, Any]:
    """The CompressJob as the worker reads it, with the input its producer made."""
    return {**cr.as_document(leave_out=LEFT_OUT), "status": {"input": {"uri": input_uri}}}


def claim_volumes(claims: dict[str, bool]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One volume per claim, mounted whole at VOLUMES_ROOT/CLAIM; {claim: read_only}."""
    volumes, mounts = [], []
    for index, (claim, read_only) in enumerate(sorted(claims.items())):
        name = f"volume-{index}"
        volumes.append(
            {"name": name, "persistentVolumeClaim": {"claimName": claim, **({"readOnly": True} if read_only else {})}}
        )
        mounts.append(
            {"name": name, "mountPath": f"{contract.VOLUMES_ROOT}/{claim}", **({"readOnly": True} if read_only else {})}
        )
    return volumes, mounts


def render_job(cr: CompressJob, config: OperatorConfig, input_uri: str) -> dict[str, Any]:
    spec = cr.spec
    in_claim, in_path = pods.parse_pvc_uri(input_uri)
    out_claim, out_path = pods.output_location(cr, config.artifact_claim)
    # The input is read-only unless the output lives on the same claim.
    volumes, mounts = claim_volumes({in_claim: in_claim != out_claim, out_claim: False})
    env = [
        pods.config_env(),
        {"name": contract.INPUT_DIR_ENV, "value": contract.volume_path(in_claim, in_path)},
        {"name": contract.OUTPUT_DIR_ENV, "value": contract.volume_path(out_claim, out_path)},
        {"name": contract.OUTPUT_URI_ENV, "value": pods.output_uri(cr, config.artifact_claim)},
        *pods.env_vars(spec.env),
    ]
    container = pods.worker_container(
        CONTAINER,
        spec.image or config.worker_image,
        WORKER_COMMAND,
        env,
        spec.resources,
        mounts,
    )
    return pods.worker_job(
        cr,
        COMPONENT,
        container,
        volumes,
        [contract.EXIT_CONFIG_ERROR, contract.EXIT_QUALITY_BOUND],
        config_document(cr, input_uri),
        job_spec={"completions": 1, "parallelism": 1},
    )


def render_children(cr: CompressJob, config: OperatorConfig, model: Resolution) -> list[dict[str, Any]]:
    """Everything a CompressJob owns, once its input `model` is ready."""
    return [render_job(cr, config, model.uri)]
