"""Strategies: how a module is spread over the ranks.

ddp: DistributedDataParallel, a full replica per rank, gradients all-reduced (with one process
there is nothing to synchronise, so the module runs unwrapped). fsdp: FSDP2 `fully_shard`, each
sharding unit (see `lmaas_worker.models.sharding_units`) then the root, so parameters, gradients
and optimizer state are split across ranks and gathered one unit at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.nn.parallel import DistributedDataParallel

from ..distributed import DistributedContext
from ..models import sharding_units


def parallelize(module: nn.Module, strategy: str, context: DistributedContext) -> nn.Module:
    module = module.to(context.device)
    if strategy == "fsdp":
        mesh = init_device_mesh(context.device.type, (context.world_size,))
        for unit in sharding_units(module):
            fully_shard(unit, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    if context.world_size == 1:
        return module
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


@contextlib.contextmanager
def gradient_sync(model: nn.Module, sync: bool) -> Iterator[None]:
    """Accumulate gradients locally unless `sync` (the last micro-batch of an optimizer step)."""
    if isinstance(model, DistributedDataParallel) and not sync:
        with model.no_sync():
            yield
    elif isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(sync)
        yield
    else:
        yield
