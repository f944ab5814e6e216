"""Batches of a dataset at given indices: the one place that turns samples into batches.

An in-memory dataset (`TensorDataset`, as the builtin digits) is gathered one tensor at a time,
a single indexing per batch; any other map-style dataset is fetched sample by sample and collated
by a `DataLoader`. Both give the same tensors (each sample's values, stacked in index order), so
training on one or the other is the same computation; gathering skips a Python call per sample and
the stacking of as many small tensors, which is a measurable part of a step on small models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


def batches(
    dataset: Dataset, indices: Sequence[int], batch_size: int, *, pin_memory: bool = False
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The samples of `dataset` at `indices`, in that order, `batch_size` at a time (the last batch
    may be short); in pinned memory when `pin_memory` (for copies to an accelerator)."""
    if type(dataset) is not TensorDataset:  # a subclass may transform samples in __getitem__
        yield from DataLoader(dataset, batch_size=batch_size, sampler=indices, pin_memory=pin_memory)
        return
    order = torch.as_tensor(indices, dtype=torch.long)
    for start in range(0, len(order), batch_size):
        batch = tuple(tensor[order[start : start + batch_size]] for tensor in dataset.tensors)
        yield tuple(t.pin_memory() for t in batch) if pin_memory else batch
