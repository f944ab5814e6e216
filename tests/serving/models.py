"""Test models reached by artifacts through `factory: "tests.serving.models:..."`: a classifier
that loads slowly (to watch readiness wait for it) and one whose forward pass is slow (to keep
requests in flight while the server is told to stop)."""

from __future__ import annotations

import time

import torch

from lmaas_worker.models.mlp import MLP


class SlowForwardMLP(MLP):
    def __init__(self, in_features: int, num_classes: int, forward_delay: float = 0.2):
        super().__init__(in_features, num_classes, hidden=(32,))
        self.forward_delay = forward_delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.forward_delay)
        return super().forward(x)


def slow_loading_mlp(in_features: int, num_classes: int, load_delay: float = 2.0) -> MLP:
    time.sleep(load_delay)
    return MLP(in_features, num_classes, hidden=(32,))


def slow_forward_mlp(in_features: int, num_classes: int, forward_delay: float = 0.2) -> MLP:
    return SlowForwardMLP(in_features, num_classes, forward_delay)
