"""The artifact of a TrainJob: its model card, metrics, curves and weights.

A builtin or factory model is written in the dense layout, and a Hugging Face model trained with
LoRA adapters as the adapter folder peft writes (`artifacts.adapter`), both by rank 0 from the full
state gathered there. A Hugging Face model is written as a Hugging Face folder
(`artifacts.huggingface`), each rank its part of the weights, so that no rank holds the whole
model. A language model's metrics have two more figures (`train.language`).
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import torch

from lmaas_api import contract
from lmaas_api.card import InputSpec, Layout, ModelCard, Producer, RecordedDataset
from lmaas_api.spec import TrainJobSpec

from ..artifacts import dense
from ..distributed import DistributedContext
from ..progress import utc_now
from .build import Job
from .checkpoint import gather_model_state

log = logging.getLogger(__name__)


def model_card(job: Job) -> ModelCard:
    data, spec = job.data, job.config.spec
    hf = spec.model.hf
    return ModelCard(
        format=contract.ARTIFACT_FORMAT,
        layout=_layout(spec),
        model=job.built.definition,
        task=data.task,
        input=InputSpec.model_validate(data.input_spec),
        num_classes=data.num_classes if data.task == "classification" else None,
        class_labels=data.class_labels,
        vocab=data.vocab,
        dtype="float32" if hf is None else hf.dtype,
        quantization=None,
        parameters=sum(p.numel() for p in job.built.module.parameters()),
        dataset=RecordedDataset(**spec.dataset.model_dump(exclude={"sequence_length"}), seed=spec.hyperparameters.seed),
        producer=Producer.model_validate(job.config.producer),
        created_at=utc_now(),
        framework=_framework(spec),
        adapter=None if spec.peft is None else _language().adapter_card(job),
    )


def _layout(spec: TrainJobSpec) -> Layout:
    if spec.model.hf is None:
        return "lmaas"
    return "huggingface" if spec.peft is None else "peft"


def _framework(spec: TrainJobSpec) -> dict[str, str]:
    """The versions of the libraries that made the model and can load it."""
    modules = [torch, *(_language().libraries(spec) if spec.model.hf is not None else [])]
    return {module.__name__: module.__version__ for module in modules}


def language_model_figures(job: Job) -> dict[str, Any]:
    """The two figures a language model's metrics add (train.language.figures); {} for other models."""
    return {} if job.config.spec.model.hf is None else _language().figures(job)


def write_artifact(
    job: Job, context: DistributedContext, metrics: dict[str, Any], history: dict[str, Any]
) -> dict[str, Any] | None:
    """Write the artifact; every rank calls it. Returns the `artifact` object of the `done` line on
    rank 0, None on the others."""
    layout = _layout(job.config.spec)
    card = model_card(job) if context.is_main else None
    if layout == "huggingface":
        size = _language().save_model(job, card, metrics, history, context.world_size, context.is_main)
    elif layout == "lmaas":
        state = gather_model_state(job.model)
        size = dense.save(job.config.artifact_dir, state, card, metrics, history) if context.is_main else None
    else:
        state = gather_model_state(job.model)
        size = _language().save_adapter(job, state, card, metrics, history) if context.is_main else None
    if not context.is_main:
        return None
    log.info("artifact written to %s (%d bytes of weights)", job.config.artifact_dir, size)
    return {
        "path": contract.ARTIFACT_SUBDIR,
        "uri": job.config.uri_of(contract.ARTIFACT_SUBDIR),
        "sizeBytes": size,
        "metrics": metrics,
    }


def _language() -> ModuleType:
    """train.language, imported on first use (only a language model's job uses it)."""
    from . import language

    return language
