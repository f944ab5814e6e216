"""The seed's three compression algorithms, reimplemented from issue 5's description, to measure
what they really give. Never used by lmaas itself.

1. Pruning that keeps `w > threshold`: the threshold is the |w| quantile of the target sparsity,
   but the comparison is on the signed weight, so every large negative weight is cut too.
2. "Quantization" that rounds the weights to 255 levels and stores them as float32 again: the
   accuracy of int8, none of the saving in size or time.
3. "Distillation" that trains the teacher some more and copies its weights into the student: the
   student must have the teacher's architecture, so nothing gets smaller.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lmaas_worker.artifacts.layers import weight_layers
from lmaas_worker.compress.training import train_epochs


def prune_signed_threshold(module: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Zero every weight not above the |w| quantile (the seed's bug: w, not |w|); returns the masks."""
    masks = {}
    with torch.no_grad():
        for name, layer in weight_layers(module):
            threshold = torch.quantile(layer.weight.abs().reshape(-1), sparsity)
            masks[name] = layer.weight > threshold
            layer.weight.mul_(masks[name])
    return masks


def fine_tune_with_masks(
    module: nn.Module, masks: dict[str, torch.Tensor], data, task, epochs: int, lr: float, seed: int
) -> None:
    layers = dict(weight_layers(module))

    def reapply() -> None:
        with torch.no_grad():
            for name, mask in masks.items():
                layers[name].weight.mul_(mask)

    train_epochs(
        module,
        data,
        epochs=epochs,
        learning_rate=lr,
        batch_size=64,
        seed=seed,
        batch_loss=lambda m, x, y: task.loss(m(x), y),
        after_step=reapply,
    )


def round_in_float(module: nn.Module) -> None:
    """Round each weight tensor to 255 levels of its range, in place, still float32."""
    with torch.no_grad():
        for _, layer in weight_layers(module):
            scale = layer.weight.abs().max() / 127
            layer.weight.copy_(torch.round(layer.weight / scale) * scale)


def copy_trained_teacher(teacher: nn.Module, data, task, epochs: int, lr: float, seed: int) -> nn.Module:
    """Train the teacher further, then "distil" by copying its weights into a same-shaped student."""
    trained = copy.deepcopy(teacher)
    trained.requires_grad_(True)
    train_epochs(
        trained,
        data,
        epochs=epochs,
        learning_rate=lr,
        batch_size=64,
        seed=seed,
        batch_loss=lambda m, x, y: task.loss(m(x), y),
    )
    student = copy.deepcopy(teacher)
    student.load_state_dict(trained.state_dict())
    return student.eval()
