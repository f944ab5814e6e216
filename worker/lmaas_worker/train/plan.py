"""Where a run stands and what is left of it, in units that do not depend on the world size.

A run's place is (epochs completed, position in the current epoch), the position counted in
samples of the epoch's global shuffled order: the permutation DistributedSampler draws from
(seed, epoch), the same whatever the number of ranks. Rank r of W takes every W-th sample of what
is left of that order, starting at r; the last ranks pad with the order's first samples so that
every rank takes as many steps (as DistributedSampler pads). After each rank has taken n samples
the world has consumed exactly the first n*W samples left, so a run resumed on any number of ranks
splits among them exactly the samples not yet consumed; from the start of an epoch the split is
DistributedSampler's.

Optimizer steps are counted in the units of the world that took them; a plan counts the steps
left at the current size and adds them to the steps done. How far the run has got, for the
learning-rate schedule, is the share of its samples seen (or of maxSteps, see `fraction_done`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The epoch's global shuffled order of the `size` training samples (DistributedSampler's)."""
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    return torch.randperm(size, generator=generator).tolist()


def rank_share(order: list[int], position: int, rank: int, world_size: int) -> list[int]:
    """This rank's samples of `order[position:]`: every `world_size`-th, from `rank` on."""
    left = order[position:]
    padding = -len(left) % world_size
    padded = left + (order * ceil_div(padding, len(order)))[:padding]
    return padded[rank::world_size]


def position_after(position: int, taken_per_rank: int, world_size: int, size: int) -> int:
    """The epoch position once every rank has taken `taken_per_rank` samples of its share, starting
    at `position` (padding consumes nothing new)."""
    return position + min(taken_per_rank * world_size, size - position)


def epoch_steps(left: int, world_size: int, batch_size: int, accumulation: int) -> int:
    """Optimizer steps that train `left` samples of an epoch on `world_size` ranks."""
    return ceil_div(ceil_div(left, world_size), batch_size * accumulation)


@dataclass(frozen=True)
class TrainPlan:
    total_steps: int
    """Steps done plus steps left at this world size, or maxSteps when that comes first."""
    total_epochs: int
    """The epoch (1-based) the last step falls in: `epochs`, unless maxSteps ends the run earlier."""
    total_samples: int
    """Epochs times the training set's size."""
    max_steps: int | None

    def fraction_done(self, samples_seen: int, step: int) -> float:
        """How far the run has got, from 0 to 1: the share of its samples seen or, with maxSteps
        (which counts optimizer steps, whatever their size), of its steps taken, whichever is
        further. Either way the run ends at 1."""
        done = samples_seen / self.total_samples
        if self.max_steps is not None:
            done = max(done, step / self.max_steps)
        return min(1.0, done)


def plan_training(size: int, world_size: int, batch_size: int, accumulation: int, epochs: int,
                  max_steps: int | None, step: int = 0, epoch: int = 0, position: int = 0) -> TrainPlan:
    """The plan of a run with `size` training samples that has taken `step` steps and stands at
    `position` in epoch `epoch` (0-based), to be continued on `world_size` ranks."""
    full = epoch_steps(size, world_size, batch_size, accumulation)
    current = epoch_steps(size - position, world_size, batch_size, accumulation) if epoch < epochs else 0
    left = current + max(0, epochs - epoch - 1) * full
    if max_steps is None or step + left <= max_steps:
        return TrainPlan(step + left, epochs, epochs * size, max_steps)
    total = max(step, max_steps)
    to_go = total - step
    if to_go > current:
        last_epoch = epoch + 1 + ceil_div(to_go - current, full)
    else:
        last_epoch = epoch + 1 if to_go or position else max(1, epoch)
    return TrainPlan(total, last_epoch, epochs * size, max_steps)
