"""The artifact of a TrainJob: its model card, metrics, curves and weights (rank 0 only).

A builtin or factory model is written in the dense layout; a Hugging Face model as a Hugging Face
folder (`artifacts.huggingface`), with two more figures in its metrics (`language_model_figures`):
the held-out perplexity of the unigram model of the training tokens, which a language model must
beat to have learnt more than token frequencies, and a sample, the greedy continuation of the start
of the held-out text, which the artifact reproduces wherever it is loaded.
"""

from __future__ import annotations

import logging
from typing import Any

import tokenizers
import torch
import transformers

from lmaas_api import contract
from lmaas_api.card import InputSpec, ModelCard, Producer, RecordedDataset

from ..artifacts import dense, huggingface
from ..data.text import unigram_perplexity
from ..models.causal_lm import greedy_continuation
from ..progress import utc_now
from .build import Job

log = logging.getLogger(__name__)

SAMPLE_PROMPT_TOKENS = 16
SAMPLE_TOKENS = 24


def model_card(job: Job) -> ModelCard:
    data, spec = job.data, job.config.spec
    hf = spec.model.hf
    return ModelCard(
        format=contract.ARTIFACT_FORMAT,
        layout="lmaas" if hf is None else "huggingface",
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
        framework={"torch": torch.__version__}
        if hf is None
        else {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
    )


def language_model_figures(job: Job) -> dict[str, Any]:
    """The unigram baseline and the greedy sample of a Hugging Face model ({} for other models).
    Every rank calls it: a sharded model computes the sample together."""
    tokenizer = job.data.tokenizer
    if tokenizer is None:
        return {}
    prompt = tokenizer.decode(job.data.val.tensors[0][0, :SAMPLE_PROMPT_TOKENS].tolist())
    continuation = greedy_continuation(
        job.model, tokenizer(prompt, add_special_tokens=False)["input_ids"], SAMPLE_TOKENS, tokenizer.eos_token_id
    )
    return {
        "unigramPerplexity": unigram_perplexity(job.data.train, job.data.val, len(tokenizer)),
        "sample": {"prompt": prompt, "greedy": tokenizer.decode(continuation)},
    }


def write_artifact(
    job: Job, state: dict[str, torch.Tensor], metrics: dict[str, Any], history: dict[str, Any]
) -> dict[str, Any]:
    """Write the artifact; returns the `artifact` object of the `done` line."""
    card = model_card(job)
    if card.layout == "huggingface":
        size = huggingface.save(
            job.config.artifact_dir, state, job.built.module.lm.config, job.data.tokenizer, card, metrics, history
        )
    else:
        size = dense.save(job.config.artifact_dir, state, card, metrics, history)
    log.info("artifact written to %s (%d bytes of weights)", job.config.artifact_dir, size)
    return {
        "path": contract.ARTIFACT_SUBDIR,
        "uri": job.config.uri_of(contract.ARTIFACT_SUBDIR),
        "sizeBytes": size,
        "metrics": metrics,
    }
