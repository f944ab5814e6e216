"""Where a run stands and what is left of it, in units that do not depend on the world size.

A run's place is (epochs completed, position in the current epoch), the position counted in
samples of the epoch's global shuffled order: the permutation DistributedSampler draws from
(seed, epoch), the same whatever the number of ranks. Rank r of W takes every W-th sample of what
is left of that order, starting at r; the last ranks pad with the order's first samples so that
every rank takes as many steps (as DistributedSampler pads). After each rank has taken n samples
the world has consumed exactly the first n*W samples left, so a run resumed on any number of ranks
splits among them exactly the samples not yet consumed; from the start of an epoch the split is
DistributedSampler's.

A run trains a number of samples fixed when it starts: epochs times the training split or, with
maxSteps, the samples its first maxSteps optimizer steps take on the world size it starts with
(`run_samples`), whichever is fewer. maxSteps thus counts steps of that first world: a checkpoint
keeps its size, and a run resumed on any other size trains the same samples, ending with a shorter
step where its own steps do not divide what is left. Steps are counted in the units of the world
that took them; a plan counts the steps left at the current size and adds them to the steps done.
How far the run has got, for the learning-rate schedule, is the share of its samples seen.
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


def rank_share(order: list[int], position: int, end: int, rank: int, world_size: int) -> list[int]:
    """This rank's samples of `order[position:end]`: every `world_size`-th, from `rank` on."""
    left = order[position:end]
    padding = -len(left) % world_size
    padded = left + (order * ceil_div(padding, len(order)))[:padding]
    return padded[rank::world_size]


def position_after(position: int, taken_per_rank: int, world_size: int, end: int) -> int:
    """The epoch position once every rank has taken `taken_per_rank` samples of its share of the
    order from `position` to `end` (padding consumes nothing new)."""
    return position + min(taken_per_rank * world_size, end - position)


def epoch_steps(left: int, world_size: int, batch_size: int, accumulation: int) -> int:
    """Optimizer steps that train `left` samples of an epoch on `world_size` ranks."""
    return ceil_div(ceil_div(left, world_size), batch_size * accumulation)


def epoch_end(total_samples: int, size: int, epoch: int) -> int:
    """Where a run of `total_samples` stops in the order of epoch `epoch` (0-based): the epoch's end,
    unless the run ends within it."""
    return max(0, min(size, total_samples - epoch * size))


def run_samples(
    size: int, epochs: int, max_steps: int | None, first_world_size: int, batch_size: int, accumulation: int
) -> int:
    """The samples a run trains: `epochs` passes over `size` samples, or what its first `max_steps`
    steps train on `first_world_size` ranks if that is fewer."""
    total = epochs * size
    if max_steps is None:
        return total
    full_epochs, steps = divmod(max_steps, epoch_steps(size, first_world_size, batch_size, accumulation))
    return min(total, full_epochs * size + position_after(0, steps * batch_size * accumulation, first_world_size, size))


@dataclass(frozen=True)
class TrainPlan:
    total_samples: int
    """Samples the run trains (`run_samples`)."""
    total_steps: int
    """Steps done plus the steps that train the samples left at this world size."""
    total_epochs: int
    """The epoch (1-based) the last step falls in: `epochs`, unless maxSteps ends the run earlier."""

    def fraction_done(self, samples_seen: int) -> float:
        """How far the run has got, from 0 to 1: the share of its samples seen."""
        return min(1.0, samples_seen / self.total_samples)


def plan_training(
    size: int,
    world_size: int,
    batch_size: int,
    accumulation: int,
    epochs: int,
    max_steps: int | None,
    step: int = 0,
    epoch: int = 0,
    position: int = 0,
    first_world_size: int | None = None,
) -> TrainPlan:
    """The plan of a run with `size` training samples that started on `first_world_size` ranks (by
    default: starts now, on `world_size`), has taken `step` steps and stands at `position` in epoch
    `epoch` (0-based), to be continued on `world_size` ranks."""
    total = run_samples(size, epochs, max_steps, first_world_size or world_size, batch_size, accumulation)
    current = epoch_steps(max(0, epoch_end(total, size, epoch) - position), world_size, batch_size, accumulation)
    later = max(0, total - (epoch + 1) * size)  # samples due in the epochs after this one
    full = epoch_steps(size, world_size, batch_size, accumulation)
    left = current + later // size * full + epoch_steps(later % size, world_size, batch_size, accumulation)
    last_epoch = ceil_div(max(total, epoch * size + position), size)
    return TrainPlan(total, step + left, last_epoch)
