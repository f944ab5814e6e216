"""Loading any lmaas artifact: the format is picked from its model card.

`load(path, artifact_code=...)` returns `(module in eval mode, card)`, ready for inference;
`load_float(path, artifact_code=...)` returns the module decoded to float32 and trainable, with its
state, which compression starts from and measures. Both refuse a directory that holds a pickle
(`files.refuse_pickles`) before reading anything else, and a card whose `model.factory` the
loading resource does not allow (see `lmaas_worker.models`: by default only builtin models load).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from lmaas_api import contract
from lmaas_api.card import ModelCard, read_card
from lmaas_api.spec import ArtifactCodePolicy

from . import compressed, dense, huggingface
from .files import refuse_pickles


def checked_card(path: str | os.PathLike[str]) -> ModelCard:
    """The card of the artifact directory `path`, once no file in it is a pickle.

    Raises FileNotFoundError or ConfigError if `path` is not an lmaas artifact, UnsafeArtifactError
    if it holds a pickle."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such artifact directory")
    refuse_pickles(root)
    return read_card(root)


def load(
    path: str | os.PathLike[str], *, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
) -> tuple[nn.Module, ModelCard]:
    """(the module the artifact describes, with its weights, in eval mode and without gradients; the card).

    Raises what `checked_card` raises, and ConfigError if the card names a factory that
    `artifact_code` does not allow."""
    card = checked_card(path)
    return _format(path, card).load(Path(path), card, artifact_code), card


def load_float(
    path: str | os.PathLike[str], *, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(the module with its weights decoded to float32, trainable; its float32 state)."""
    card = checked_card(path)
    return _format(path, card).load_float(Path(path), card, artifact_code)


def _format(path: str | os.PathLike[str], card: ModelCard) -> ModuleType:
    if card.layout == "huggingface":
        return huggingface
    if card.compression is not None:
        return compressed
    if card.quantization is not None:
        raise ValueError(
            f"{Path(path) / contract.MODEL_CARD_FILE}: quantization {card.quantization.scheme} without "
            f"a compression section, so nothing says how the integer weights are stored"
        )
    return dense
