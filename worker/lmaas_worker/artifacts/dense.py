"""The float layout: `model.safetensors` holds the module's whole state dict, floating-point tensors
as float32, under the state dict's own names; the card has no `compression` section.

This is what a TrainJob writes, and what a CompressJob writes when nothing it did needs the
compressed layout (a distilled student, say).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_api.spec import ArtifactCodePolicy

from ..models import rebuild_model
from .writing import write_artifact


def save(
    directory: Path,
    state_dict: dict[str, torch.Tensor],
    card: ModelCard,
    metrics: dict[str, Any],
    history: dict[str, Any] | None = None,
) -> int:
    """Write the artifact to `directory` atomically; return the size of the weights file in bytes."""
    if card.compression is not None or card.quantization is not None:
        raise ValueError(
            "a card with compression or quantization describes the compressed layout "
            "(artifacts.compressed.save), not float weights"
        )
    weights = {
        name: value.detach().to("cpu", torch.float32 if value.is_floating_point() else value.dtype)
        for name, value in state_dict.items()
    }
    return write_artifact(directory, weights, card, metrics, history)


def load_float(
    directory: Path, card: ModelCard, artifact_code: ArtifactCodePolicy
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(the card's module with the stored weights, trainable; its state as stored)."""
    module = rebuild_model(card.model, artifact_code)
    state = load_file(Path(directory) / contract.WEIGHTS_FILE)
    module.load_state_dict(state, strict=True)
    return module, state


def load(directory: Path, card: ModelCard, artifact_code: ArtifactCodePolicy) -> nn.Module:
    """The card's module with the stored weights, for inference (eval mode, no gradients)."""
    module, _ = load_float(directory, card, artifact_code)
    module.requires_grad_(False)
    return module.eval()
