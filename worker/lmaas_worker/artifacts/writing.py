"""The files of an artifact directory, written together and atomically (`files.atomic_directory`).

Each format's writer (`dense.save`, `compressed.save`) prepares the tensors of `model.safetensors`
and the model card; `write_artifact` writes them with `metrics.json` and, when a training history
is given, `curves.png`. `copy_artifact` writes an artifact again elsewhere with another card and
metrics, its weights copied byte for byte. `write_metadata` writes the files every layout has
beside its weights (the card, metrics and curves), for a layout that writes its weights itself
(`huggingface.save`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from lmaas_api import contract
from lmaas_api.card import ModelCard

from ..curves import plot_curves
from .files import atomic_directory

CURVES_FILE = "curves.png"


def write_artifact(
    directory: Path,
    tensors: dict[str, torch.Tensor],
    card: ModelCard,
    metrics: dict[str, Any],
    history: dict[str, Any] | None = None,
) -> int:
    """Write the artifact to `directory` atomically; return the size of the weights file in bytes."""
    directory = Path(directory)
    with atomic_directory(directory) as temporary:
        save_file(
            {name: tensor.contiguous() for name, tensor in tensors.items()},
            temporary / contract.WEIGHTS_FILE,
            metadata={"format": "pt", "lmaas": contract.ARTIFACT_FORMAT},
        )
        write_metadata(temporary, card, metrics, history)
    return (directory / contract.WEIGHTS_FILE).stat().st_size


def copy_artifact(source: Path, target: Path, card: ModelCard, metrics: dict[str, Any]) -> int:
    """Write the weights of the artifact at `source` to `target` atomically, with `card` and
    `metrics`; return the size of the weights file in bytes."""
    target = Path(target)
    with atomic_directory(target) as temporary:
        shutil.copyfile(Path(source) / contract.WEIGHTS_FILE, temporary / contract.WEIGHTS_FILE)
        write_metadata(temporary, card, metrics)
    return (target / contract.WEIGHTS_FILE).stat().st_size


def write_metadata(
    directory: Path, card: ModelCard, metrics: dict[str, Any], history: dict[str, Any] | None = None
) -> None:
    """The card and the metrics into `directory`, and the curves of `history` when there is one."""
    (directory / contract.MODEL_CARD_FILE).write_text(card.to_json())
    (directory / contract.METRICS_FILE).write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    if history is not None:
        plot_curves(history, directory / CURVES_FILE, title=(card.producer and card.producer.name) or "")
