"""Evaluation on the held-out split, spread over the ranks.

Rank r takes samples r, r+W, r+2W, ...; ranks with one sample fewer repeat sample 0 with weight 0.
Every rank thus runs the same number of forward passes (fsdp gathers parameters collectively), and
each sample counts exactly once in the all-reduced totals.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from ..data.batches import batches
from ..distributed import DistributedContext
from .tasks import Task


def eval_shard(n: int, rank: int, world_size: int) -> tuple[list[int], list[float]]:
    """(indices, weights) of this rank's share of `n` samples; equal length on every rank."""
    per_rank = math.ceil(n / world_size)
    indices, weights = [], []
    for k in range(per_rank):
        i = rank + k * world_size
        indices.append(i if i < n else 0)
        weights.append(1.0 if i < n else 0.0)
    return indices, weights


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    task: Task,
    context: DistributedContext,
    batch_size: int,
    autocast_dtype: torch.dtype | None,
) -> dict[str, float]:
    """{"metric": name, "value": metric on the whole split (accuracy in points), "loss": mean loss},
    the same on every rank."""
    indices, weights = eval_shard(len(dataset), context.rank, context.world_size)
    device = context.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    start = 0
    for x, y in batches(dataset, indices, batch_size):
        w = torch.tensor(weights[start : start + len(x)], device=device)
        start += len(x)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            output = model(x)
        totals += task.batch_totals(output, y, w)
    model.train(was_training)
    dist.all_reduce(totals)
    value, loss = task.metric_value(totals.cpu())
    return {"metric": task.metric, "value": task.reported(value), "loss": loss}
