"""The model as it moves through the steps.

Steps work on a float32, trainable module; what makes the result compressed is recorded beside
it and applied when it is stored (`storage.encode`):

- `masks`: unstructured pruning's kept weights (True = kept), re-applied after every fine-tuning
  step so that pruned weights stay zero;
- `sizes`: layers that structured pruning shrank, {name: {"in", "out"}}, so that a loader can
  rebuild the architecture before loading the smaller tensors;
- `quantization`: {"scheme": "int8"} or {"scheme": "int4", "groupSize": g}. Weights keep float32
  values in memory (the dequantized ones once quantized) and are stored as integers. A later
  fine-tuning moves them off the integer grid; storing re-quantizes, so the output stays quantized.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class WorkingModel:
    module: nn.Module
    definition: dict[str, Any]
    """How to rebuild the module: the model card's `model` entry (builtin or factory, args)."""
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    pruning: dict[str, Any] | None = None
    """The last pruning applied: structure, scope, target sparsity (for the model card)."""

    def copy(self) -> "WorkingModel":
        return WorkingModel(copy.deepcopy(self.module), copy.deepcopy(self.definition),
                            {k: v.clone() for k, v in self.masks.items()}, copy.deepcopy(self.sizes),
                            copy.deepcopy(self.quantization), copy.deepcopy(self.pruning))

    def apply_masks(self) -> None:
        if not self.masks:
            return
        state = dict(self.module.named_parameters())
        with torch.no_grad():
            for name, mask in self.masks.items():
                state[name].mul_(mask)
