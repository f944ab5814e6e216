"""scikit-learn's handwritten digits: 1,797 real 8x8 images, 10 classes, shipped with the package.

Pixels (0..16) are scaled to [0, 1] and flattened to 64 features; the split into training and
validation samples is a permutation drawn from `seed`, so the same seed gives the same split.

`test_fraction` > 0 first sets aside a test split that neither training nor validation sees (the
rest is split as above); `held_out="test"` then makes it the bundle's held-out split, so that
settings chosen on the validation samples can be reported on samples no choice was made on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: disjoint, covering range(n), the same for the same seed."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    n_val = min(max(1, round(n * validation_fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


HELD_OUT = ("validation", "test")


def load(validation_fraction: float = 0.2, seed: int = 0, test_fraction: float = 0.0, held_out: str = "validation"):
    from sklearn.datasets import load_digits

    from . import DataBundle

    if held_out not in HELD_OUT:
        raise ValueError(f"held_out must be one of {HELD_OUT}, got {held_out!r}")
    if held_out == "test" and not test_fraction:
        raise ValueError("held_out 'test' needs a test_fraction above 0")
    digits = load_digits()
    features = torch.from_numpy(digits.data.astype(np.float32) / 16.0)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    rest, test = split_indices(len(labels), test_fraction, seed) if test_fraction else (np.arange(len(labels)), None)
    train, val = (rest[part] for part in split_indices(len(rest), validation_fraction, seed))
    if held_out == "test":
        val = test
    return DataBundle(
        train=TensorDataset(features[train], labels[train]),
        val=TensorDataset(features[val], labels[val]),
        task="classification",
        num_classes=10,
        class_labels=[str(d) for d in range(10)],
        input_spec={
            "shape": [64],
            "dtype": "float32",
            "layout": "8x8 image, row-major",
            "preprocessing": {"divideBy": 16.0, "rawRange": [0, 16]},
        },
    )
