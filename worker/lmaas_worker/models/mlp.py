"""A multi-layer perceptron classifier (the digits default: 64 features, 10 classes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.0):
        super().__init__()
        hidden = list(hidden)
        if in_features < 1 or num_classes < 2 or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(
                f"need in_features >= 1, num_classes >= 2 and positive integer hidden sizes, "
                f"got in_features={in_features}, num_classes={num_classes}, hidden={hidden}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))

    def fsdp_units(self) -> list[nn.Module]:
        return [m for m in self.net if isinstance(m, nn.Linear)]


def build(in_features: int, num_classes: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.0) -> MLP:
    return MLP(in_features, num_classes, hidden, dropout)
