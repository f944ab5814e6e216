"""Build everything a run needs from the config: data, model (checked against the data), the
parallel wrapper and the optimizer. Configuration problems surface here, before any step runs."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from lmaas_api.errors import ConfigError
from lmaas_api.spec import TrainJobSpec

from ..data import DataBundle, build_datasets, text
from ..data.tokenizer import load_tokenizer, train_tokenizer
from ..distributed import DistributedContext
from ..models import BuiltModel, build_model, data_hints
from ..models.causal_lm import build_causal_lm
from .config import TrainConfig
from .optim import build_optimizer
from .parallel import parallelize
from .tasks import TASKS, Task

log = logging.getLogger(__name__)


@dataclass
class Job:
    config: TrainConfig
    data: DataBundle
    task: Task
    built: BuiltModel
    model: nn.Module
    """The module as trained: wrapped in DDP, sharded by FSDP, or plain."""
    optimizer: torch.optim.Optimizer
    autocast_dtype: torch.dtype | None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Prepared:
    """What a run needs before any process group exists: data, task and the model, checked."""

    data: DataBundle
    task: Task
    built: BuiltModel


def prepare(config: TrainConfig) -> Prepared:
    """Data and model from the config, the model checked against two samples. Needs no process group,
    so the pod's launcher runs it before torchrun to fail fast on a configuration error."""
    seed_everything(config.spec.hyperparameters.seed)
    data, built = _language_model(config) if config.spec.model.hf is not None else _network(config.spec)
    data = _check_model_fits_data(built.module, data)
    return Prepared(data=data, task=TASKS[data.task], built=built)


def _network(spec: TrainJobSpec) -> tuple[DataBundle, BuiltModel]:
    """A builtin or factory model, and the data set it is told about."""
    seed = spec.hyperparameters.seed
    data = build_datasets(spec.dataset, seed=seed, context=(spec.model.args or {}).get("context"))
    torch.manual_seed(seed)  # every rank builds the same initial weights
    built = build_model(
        spec.model, data_hints(data.task, data.input_spec.get("shape"), data.num_classes, data.vocab), data.task
    )
    return data, built


def _language_model(config: TrainConfig) -> tuple[DataBundle, BuiltModel]:
    """A Hugging Face model, its tokenizer, and its text tokenized and packed."""
    spec = config.spec
    train_text, held_out_text = text.split_text(text.source_text(spec.dataset), spec.dataset.validation_fraction)
    if spec.tokenizer is not None:
        tokenizer = train_tokenizer(train_text, spec.tokenizer.train.vocab_size)
    else:
        tokenizer = load_tokenizer(config.model_dir, "spec.model.hf.uri")
    torch.manual_seed(spec.hyperparameters.seed)  # every rank builds the same initial weights
    built = build_causal_lm(spec.model.hf, tokenizer, config.model_dir, spec.dataset.sequence_length)
    return text.text_datasets(train_text, held_out_text, tokenizer, spec.dataset.sequence_length), built


def build_job(config: TrainConfig, context: DistributedContext) -> Job:
    spec = config.spec
    ready = prepare(config)
    data, built = ready.data, ready.built
    parameters = sum(p.numel() for p in built.module.parameters())
    log.info(
        "model %s with %s parameters; data: %d training and %d validation samples (%s)",
        spec.model.label,
        f"{parameters:,}",
        len(data.train),
        len(data.val),
        data.task,
    )
    model = parallelize(built.module, spec.strategy, context)
    optimizer = build_optimizer(model.parameters(), spec.hyperparameters)
    return Job(
        config=config,
        data=data,
        task=ready.task,
        built=built,
        model=model,
        optimizer=optimizer,
        autocast_dtype=_autocast_dtype(spec.hyperparameters.mixed_precision, context.device),
    )


def _autocast_dtype(mixed_precision: str, device: torch.device) -> torch.dtype | None:
    if mixed_precision == "bf16" or (mixed_precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def _check_model_fits_data(module: nn.Module, data: DataBundle) -> DataBundle:
    """Run two training samples through the model; a mismatch is a configuration error.

    Returns `data` with `num_classes` filled in from the model's output when the data did not say.
    """
    inputs, targets = zip(*(data.train[i] for i in range(min(2, len(data.train)))))
    x, y = torch.stack(inputs), torch.stack(targets)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            output = module(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        raise ConfigError(
            "spec.model",
            f"the model cannot take the data set's inputs of shape "
            f"{list(x.shape[1:])}: {type(error).__name__}: {error}",
        ) from error
    finally:
        module.train(was_training)
    if not torch.is_tensor(output):
        raise ConfigError("spec.model", f"the model must return a tensor of logits, got {type(output).__name__}")
    if data.task == "classification":
        if output.dim() != 2 or output.shape[0] != x.shape[0]:
            raise ConfigError(
                "spec.model",
                f"a classifier must return (batch, classes) logits; for a batch of "
                f"{x.shape[0]} it returned shape {list(output.shape)}",
            )
        if data.num_classes is not None and output.shape[1] != data.num_classes:
            raise ConfigError(
                "spec.model",
                f"the model gives {output.shape[1]} class scores but the data set has {data.num_classes} classes",
            )
        if int(y.max()) >= output.shape[1]:
            raise ConfigError(
                "spec.model",
                f"the model gives {output.shape[1]} class scores but the data set has label {int(y.max())}",
            )
        return data if data.num_classes is not None else replace(data, num_classes=int(output.shape[1]))
    if output.dim() != 3 or list(output.shape[:2]) != list(y.shape):
        raise ConfigError(
            "spec.model",
            f"a language model must return (batch, time, vocab) logits for targets "
            f"of shape {list(y.shape)}; it returned shape {list(output.shape)}",
        )
    if data.vocab is not None and output.shape[2] != len(data.vocab):
        raise ConfigError(
            "spec.model", f"the model scores {output.shape[2]} tokens but the vocabulary has {len(data.vocab)}"
        )
    return data
