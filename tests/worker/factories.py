"""User code for the worker tests, reached through `factory: "tests.worker.factories:..."`.

It exercises the factory protocol the way a user would, gives the tests a model slow enough
to kill a rank in mid-run, and a data set that records which samples training fetched.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from lmaas_worker.data import digits
from lmaas_worker.models.mlp import MLP


class SlowMLP(MLP):
    """The builtin MLP, sleeping `delay` seconds per forward pass."""

    def __init__(self, in_features: int, num_classes: int, hidden=(64,), delay: float = 0.02, dropout: float = 0.0):
        super().__init__(in_features, num_classes, hidden, dropout)
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            time.sleep(self.delay)
        return super().forward(x)


def slow_mlp(in_features: int, num_classes: int, hidden=(64,), delay: float = 0.02, dropout: float = 0.0) -> nn.Module:
    return SlowMLP(in_features, num_classes, hidden, delay, dropout)


def linear_classifier(in_features: int, num_classes: int) -> nn.Module:
    return nn.Linear(in_features, num_classes)


def blobs(samples: int = 400, features: int = 8, seed: int = 0):
    """Two Gaussian blobs, labels 0 and 1: (train, validation) datasets with a class count."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (samples,), generator=generator)
    centres = torch.stack([torch.full((features,), -1.0), torch.full((features,), 1.0)])
    inputs = centres[labels] + torch.randn(samples, features, generator=generator)
    cut = samples * 3 // 4
    train = TensorDataset(inputs[:cut], labels[:cut])
    train.num_classes = 2
    train.class_labels = ["left", "right"]
    return train, TensorDataset(inputs[cut:], labels[cut:])


def not_a_module():
    return "a string"


class RecordedDataset(Dataset):
    """A training split that appends the indices of every batch the training loop fetches to
    `<record>/<pid>` (DataLoader fetches batches through `__getitems__`; single items, as the
    worker's model check reads them, are not recorded)."""

    def __init__(self, inner: Dataset, record: Path):
        self.inner = inner
        self.record = record

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        return self.inner[index]

    def __getitems__(self, indices: list[int]) -> list:
        with (self.record / str(os.getpid())).open("a") as file:
            file.write(" ".join(map(str, indices)) + "\n")
        return [self.inner[i] for i in indices]


def recorded_digits(record: str, seed: int = 0, validation_fraction: float = 0.2):
    """The builtin digits, its training split recorded into the directory `record`."""
    bundle = digits.load(validation_fraction, seed)
    return replace(bundle, train=RecordedDataset(bundle.train, Path(record)))
