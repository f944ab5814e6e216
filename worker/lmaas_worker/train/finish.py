"""The artifact of a TrainJob: its model card, metrics, curves and weights (rank 0 only)."""
from __future__ import annotations

import logging
from typing import Any

import torch

from lmaas_api import contract

from .. import artifacts
from ..progress import utc_now
from .build import Job

log = logging.getLogger(__name__)


def model_card(job: Job) -> dict[str, Any]:
    data, spec = job.data, job.config.spec
    return {
        "format": contract.ARTIFACT_FORMAT,
        "model": job.built.definition,
        "task": data.task,
        "input": data.input_spec,
        "numClasses": data.num_classes if data.task == "classification" else None,
        "classLabels": data.class_labels,
        "vocab": data.vocab,
        "dtype": "float32",
        "quantization": None,
        "parameters": sum(p.numel() for p in job.built.module.parameters()),
        "dataset": {**spec.dataset.to_dict(), "seed": spec.hyperparameters.seed},
        "producer": job.config.producer,
        "createdAt": utc_now(),
        "framework": {"torch": torch.__version__},
    }


def write_artifact(job: Job, state: dict[str, torch.Tensor], metrics: dict[str, Any],
                   history: dict[str, Any]) -> dict[str, Any]:
    """Write the artifact; returns the `artifact` object of the `done` line."""
    size = artifacts.save_artifact(job.config.artifact_dir, state, model_card(job), metrics, history)
    log.info("artifact written to %s (%d bytes of weights)", job.config.artifact_dir, size)
    return {"path": contract.ARTIFACT_SUBDIR, "uri": job.config.uri_of(contract.ARTIFACT_SUBDIR),
            "sizeBytes": size, "metrics": metrics}
