"""User code for the worker tests, reached through `factory: "tests.worker.factories:..."`.

It exercises the factory protocol the way a user would, and gives the tests a model slow enough
to kill a rank in mid-run.
"""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import TensorDataset

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
