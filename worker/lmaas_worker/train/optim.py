"""Optimizers and the learning-rate schedule.

The schedule is a pure function of how far the run has got, as a fraction of it from 0 to 1
(`TrainPlan.fraction_done`: the share of its samples seen), so a resumed job needs
no scheduler state and a job resumed on another number of ranks, whose steps are larger or smaller,
continues on the same curve: linear warm-up to the peak rate, then constant, cosine decay to zero,
or linear decay to zero at the end of the run.

`warmupSteps` counts the first optimizer steps of the run as it starts: warm-up lasts the fraction
of the run that those steps cover on the world size the run starts with (`warmup_fraction`). A
checkpoint keeps that fraction, so a run resumed on another world size warms up over the same part
of training, not over the same number of its own (larger or smaller) steps. For a run that keeps
its size this is the usual schedule: the rate of step s is (s + 1) / warmupSteps of the peak during
warm-up, and decay runs from the end of warm-up to the last step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from lmaas_api.spec import Hyperparameters

DEFAULT_SGD_MOMENTUM = 0.9


def build_optimizer(parameters: Iterable[torch.nn.Parameter], hp: Hyperparameters) -> torch.optim.Optimizer:
    parameters = list(parameters)
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    momentum = DEFAULT_SGD_MOMENTUM if hp.momentum is None else hp.momentum
    return torch.optim.SGD(parameters, lr=hp.learning_rate, momentum=momentum, weight_decay=hp.weight_decay)


def lr_factor(start: float, end: float, schedule: str, warmup: float) -> float:
    """Multiplier of the peak rate for a step that takes the run from fraction `start` to `end` of it,
    when warm-up lasts the first `warmup` of the run."""
    if start < warmup:
        return min(1.0, end / warmup)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (start - warmup) / (1.0 - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
