"""Optimizers and the learning-rate schedule.

The schedule is a pure function of the optimizer step, so a resumed job needs no scheduler
state: linear warm-up over `warmup_steps` to the peak rate, then constant, cosine decay to zero,
or linear decay to zero at `total_steps`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from lmaas_operator.api.spec import Hyperparameters

DEFAULT_SGD_MOMENTUM = 0.9


def build_optimizer(parameters: Iterable[torch.nn.Parameter], hp: Hyperparameters) -> torch.optim.Optimizer:
    parameters = list(parameters)
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    momentum = DEFAULT_SGD_MOMENTUM if hp.momentum is None else hp.momentum
    return torch.optim.SGD(parameters, lr=hp.learning_rate, momentum=momentum, weight_decay=hp.weight_decay)


def lr_factor(step: int, schedule: str, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak rate for optimizer step `step` (0-based: the step about to run)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, max(0.0, (step - warmup_steps) / max(1, total_steps - warmup_steps)))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
