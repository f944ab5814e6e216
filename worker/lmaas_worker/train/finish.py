"""The artifact of a TrainJob: its model card, metrics, curves and weights (rank 0 only)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from lmaas_api import contract
from lmaas_api.card import InputSpec, ModelCard, Producer, RecordedDataset

from ..artifacts import dense
from ..progress import utc_now
from .build import Job

log = logging.getLogger(__name__)


def model_card(job: Job) -> ModelCard:
    data, spec = job.data, job.config.spec
    return ModelCard(
        format=contract.ARTIFACT_FORMAT,
        model=job.built.definition,
        task=data.task,
        input=InputSpec.model_validate(data.input_spec),
        num_classes=data.num_classes if data.task == "classification" else None,
        class_labels=data.class_labels,
        vocab=data.vocab,
        dtype="float32",
        quantization=None,
        parameters=sum(p.numel() for p in job.built.module.parameters()),
        dataset=RecordedDataset(**spec.dataset.model_dump(), seed=spec.hyperparameters.seed),
        producer=Producer.model_validate(job.config.producer),
        created_at=utc_now(),
        framework={"torch": torch.__version__},
    )


def write_artifact(
    job: Job, state: dict[str, torch.Tensor], metrics: dict[str, Any], history: dict[str, Any]
) -> dict[str, Any]:
    """Write the artifact; returns the `artifact` object of the `done` line."""
    size = dense.save(job.config.artifact_dir, state, model_card(job), metrics, history)
    log.info("artifact written to %s (%d bytes of weights)", job.config.artifact_dir, size)
    return {
        "path": contract.ARTIFACT_SUBDIR,
        "uri": job.config.uri_of(contract.ARTIFACT_SUBDIR),
        "sizeBytes": size,
        "metrics": metrics,
    }
