"""A small convolutional classifier for square single-channel images given as flat features.

digits gives 64 features; the network reads them as one 8x8 image. Each conv block is a 3x3
convolution, ReLU and, while the image is at least 2x2, a 2x2 max-pool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        side = math.isqrt(in_features)
        if side * side != in_features:
            raise ValueError(f"cnn reads a square image, but {in_features} input features are not a square")
        channels = list(channels)
        if not channels or any(not isinstance(c, int) or c < 1 for c in channels) or hidden < 1 or num_classes < 2:
            raise ValueError(
                f"need positive integer channels, hidden and num_classes >= 2, "
                f"got channels={channels}, hidden={hidden}, num_classes={num_classes}"
            )
        self.side = side
        blocks: list[nn.Module] = []
        width = 1
        for c in channels:
            blocks += [nn.Conv2d(width, c, kernel_size=3, padding=1), nn.ReLU()]
            if side >= 2:
                blocks.append(nn.MaxPool2d(2))
                side //= 2
            width = c
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * side * side, hidden),
            nn.ReLU(),
            *([nn.Dropout(dropout)] if dropout else []),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.reshape(-1, 1, self.side, self.side)))

    def fsdp_units(self) -> list[nn.Module]:
        return [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def build(
    in_features: int, num_classes: int, channels: Sequence[int] = (16, 32), hidden: int = 64, dropout: float = 0.0
) -> SmallCNN:
    return SmallCNN(in_features, num_classes, channels, hidden, dropout)
