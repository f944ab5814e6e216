"""The small single-process training loop of fine-tuning (after pruning) and distillation.

No weight decay (it would pull pruned and kept weights alike towards zero). Fine-tuning uses Adam;
distillation uses SGD with momentum 0.9, as Hinton et al. did (see `distill`). The data order and
dropout are drawn from `seed`, so two runs with the same seed see the same batches in the same
order: distillation relies on that to compare a student trained with a teacher to the same student
trained without one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.batches import batches

BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
SGD_MOMENTUM = 0.9


def train_epochs(
    module: nn.Module,
    dataset: Dataset,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    batch_loss: BatchLoss,
    optimizer: str = "adam",
    after_step: Callable[[], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train `module` in place; returns the mean training loss of each epoch."""
    if epochs <= 0:
        return []
    order = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    parameters = [p for p in module.parameters() if p.requires_grad]
    if optimizer == "adam":
        step = torch.optim.Adam(parameters, lr=learning_rate)
    elif optimizer == "sgd":
        step = torch.optim.SGD(parameters, lr=learning_rate, momentum=SGD_MOMENTUM)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    losses = []
    module.train()
    for epoch in range(epochs):
        total, batches = 0.0, 0
        for x, y in shuffled_batches(dataset, batch_size, order):
            loss = batch_loss(module, x, y)
            step.zero_grad(set_to_none=True)
            loss.backward()
            step.step()
            if after_step is not None:
                after_step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(1, batches))
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1])
    module.eval()
    return losses


def shuffled_batches(dataset: Dataset, batch_size: int, order: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    """One epoch of (inputs, targets) batches in a random order drawn from `order`."""
    return batches(dataset, torch.randperm(len(dataset), generator=order).tolist(), batch_size)
