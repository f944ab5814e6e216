"""The contract between the operator (which renders pods) and the worker (which runs in them).

Both sides import these names, so a pod the operator renders is a pod the worker understands.
Neither kopf nor torch is imported here.
"""

from __future__ import annotations

from typing import Final

# --- what the operator gives a worker pod -------------------------------------------------

CONFIG_ENV = "LMAAS_CONFIG"
"""Path of the JSON file holding the custom resource (apiVersion, kind, metadata with name,
namespace and uid, and the spec with its defaults applied, less what may change while the pods run;
see the kinds' builders). In a pod, a downward API volume projecting the pod-template annotation
lmaas_operator.pods.CONFIG_ANNOTATION."""
CONFIG_MOUNT = "/etc/lmaas"
CONFIG_FILE = "config.json"

VOLUMES_ROOT = "/var/lib/lmaas/volumes"
"""Each PersistentVolumeClaim a pod uses is mounted whole at VOLUMES_ROOT/CLAIM, so pvc://CLAIM/PATH
is the directory VOLUMES_ROOT/CLAIM/PATH (the worker creates it: kubelet-made subPath directories
belong to root)."""

OUTPUT_DIR_ENV = "LMAAS_OUTPUT_DIR"
"""Directory the worker writes to: the CR's output location."""

INPUT_DIR_ENV = "LMAAS_INPUT_DIR"
"""Directory of the input artifact (CompressJob, ModelService)."""

OUTPUT_URI_ENV = "LMAAS_OUTPUT_URI"
"""pvc://CLAIM/PATH that OUTPUT_DIR is, so that the worker can report artifact URIs."""

# Layout of an output directory.
ARTIFACT_SUBDIR = "artifact"
CHECKPOINT_SUBDIR = "checkpoints"

BACKEND_ENV = "LMAAS_BACKEND"
"""torch.distributed backend chosen by the operator: nccl when the pod requests GPUs, else gloo."""

RDZV_PORT = 29400
"""Port of torchrun's c10d rendezvous store on the node of rank 0."""


def volume_path(claim: str, path: str) -> str:
    """Where pvc://CLAIM/PATH is inside a pod."""
    return f"{VOLUMES_ROOT}/{claim}/{path}".rstrip("/")


AUTH_TOKEN_ENV = "LMAAS_AUTH_TOKEN"
"""Bearer token the serving worker requires (filled from the ModelService's Secret); unset: no auth.
Never a command-line flag, which would show in `ps`."""

LIVENESS_PATH = "/v2/health/live"
READINESS_PATH = "/v2/health/ready"
"""Probes of serving pods: ready only once the model is loaded and a warm-up inference ran."""


# --- what a worker tells the operator -----------------------------------------------------

EXIT_CONFIG_ERROR = 78
"""Exit status of a worker whose configuration cannot work (sysexits' EX_CONFIG). The TrainJob's
podFailurePolicy fails the job at once on it instead of spending the restart budget."""

EXIT_QUALITY_BOUND = 79
"""Exit status of a CompressJob whose step broke maxAccuracyDrop (or maxPerplexityIncrease): rerunning
gives the same figures, so the job fails at once, with the report written."""

TERMINATION_LOG = "/dev/termination-log"
"""Rank 0 writes a one-line JSON summary here on exit (artifact or failure reason); the operator
reads it from the pod status, so that no worker needs API access. Kubernetes keeps at most 4096
bytes of it: the summary must fit."""

PROGRESS_KEYS = (
    "event",
    "time",
    "epoch",
    "totalEpochs",
    "step",
    "totalSteps",
    "loss",
    "evalMetric",
    "evalValue",
    "samplesPerSecond",
    "checkpoint",
    "artifact",
    "message",
)
"""Every progress line on stdout is one JSON object with exactly these keys (null when not
applicable). `event` is one of PROGRESS_EVENTS."""
PROGRESS_EVENTS = ("start", "progress", "eval", "checkpoint", "resume", "done", "error")

# --- artifacts ----------------------------------------------------------------------------

ARTIFACT_FORMAT: Final = "lmaas.artifact/v1"
WEIGHTS_FILE = "model.safetensors"
MODEL_CARD_FILE = "model.json"
METRICS_FILE = "metrics.json"
