"""The model as it moves through the steps.

Steps work on a float32, trainable module; what makes the result compressed is recorded beside
it and applied when it is stored (`save`, in the compressed layout of `artifacts.compressed`):

- `masks`: unstructured pruning's kept weights (True = kept), re-applied after every fine-tuning
  step so that pruned weights stay zero;
- `sizes`: layers that structured pruning shrank, so that a loader can rebuild the architecture
  before loading the smaller tensors;
- `quantization`: the scheme (int8, or int4 with its group size). Weights keep float32 values in
  memory (the dequantized ones once quantized) and are stored as integers. A later fine-tuning
  moves them off the integer grid; storing re-quantizes, so the output stays quantized.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmaas_api.card import LayerSize, ModelCard, Quantization, Sparsity
from lmaas_api.spec import ArtifactCodePolicy, ModelDefinition

from ..artifacts import compressed, load_float


@dataclass
class WorkingModel:
    module: nn.Module
    definition: ModelDefinition
    """How to rebuild the module: the model card's `model` entry (builtin or factory, args)."""
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    sizes: dict[str, LayerSize] = field(default_factory=dict)
    quantization: Quantization | None = None
    pruning: Sparsity | None = None
    """The last pruning applied (for the model card)."""

    def copy(self) -> WorkingModel:
        return WorkingModel(
            copy.deepcopy(self.module),
            self.definition,
            {k: v.clone() for k, v in self.masks.items()},
            dict(self.sizes),
            self.quantization,
            self.pruning,
        )

    def apply_masks(self) -> None:
        if not self.masks:
            return
        state = dict(self.module.named_parameters())
        with torch.no_grad():
            for name, mask in self.masks.items():
                state[name].mul_(mask)

    def save(self, directory: Path, card: ModelCard, metrics: dict[str, Any]) -> int:
        """Store the model as an artifact (its masks applied first), quantized as `card.quantization`
        says; returns the size of the weights file in bytes."""
        self.apply_masks()
        return compressed.save(directory, self.module, card, metrics, self.sizes)


def working_model(
    directory: str | os.PathLike[str], card: ModelCard, artifact_code: ArtifactCodePolicy
) -> tuple[WorkingModel, dict[str, torch.Tensor]]:
    """An input artifact (whose card is `card`) as the steps' starting point (float32, trainable),
    and its float32 state.

    A compressed input keeps what made it compressed: its zero pattern becomes masks, its smaller
    layers and its quantization carry over to the output.
    """
    module, state = load_float(directory, artifact_code=artifact_code)
    tensors = card.compression.tensors if card.compression else {}
    sizes = card.compression.sizes if card.compression else {}
    masks = {name: state[name] != 0 for name, entry in tensors.items() if entry.layout == "bitmask"}
    return WorkingModel(
        module=module,
        definition=card.model,
        masks=masks,
        sizes=dict(sizes),
        quantization=card.quantization,
        pruning=card.sparsity,
    ), state
