"""The Hugging Face layout: the artifact is a Hugging Face model folder, plus lmaas's own files.

    config.json, generation_config.json    the model's config, its generation defaults
    model.safetensors                      the weights in the model's dtype (sharded as
                                           model-0000N-of-0000M.safetensors with an index when large)
    tokenizer.json, tokenizer_config.json  the tokenizer
    model.json, metrics.json, curves.png   the card (layout "huggingface"), metrics and curves

`AutoModelForCausalLM.from_pretrained(directory)` and `AutoTokenizer.from_pretrained(directory)`
load it like any such folder. lmaas loads it from safetensors only and runs no code from it
(`use_safetensors=True`, `trust_remote_code=False`), wrapped in `CausalLM`, so that like every
lmaas module it maps token ids to logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedTokenizerBase

from lmaas_api.card import ModelCard
from lmaas_api.spec import ArtifactCodePolicy

from ..models.causal_lm import PREFIX, CausalLM
from .files import atomic_directory
from .writing import write_metadata


def save(
    directory: Path,
    state: dict[str, torch.Tensor],
    config: PretrainedConfig,
    tokenizer: PreTrainedTokenizerBase,
    card: ModelCard,
    metrics: dict[str, Any],
    history: dict[str, Any] | None = None,
) -> int:
    """Write the artifact atomically from the full state dict of a trained `CausalLM` and its model's
    config; returns the size of the weight files in bytes."""
    if card.layout != "huggingface":
        raise ValueError(f"a card of layout {card.layout!r} does not describe a Hugging Face folder")
    with torch.device("meta"):  # no storage of its own: it holds the state's tensors
        lm = AutoModelForCausalLM.from_config(config)
    lm.load_state_dict({name.removeprefix(PREFIX): tensor for name, tensor in state.items()}, strict=True, assign=True)
    lm.tie_weights()  # assigning gave tied parameters (embeddings and head) a tensor each
    directory = Path(directory)
    with atomic_directory(directory) as temporary:
        lm.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        write_metadata(temporary, card, metrics, history)
    return sum(file.stat().st_size for file in directory.glob("*.safetensors"))


def load(directory: Path, card: ModelCard, artifact_code: ArtifactCodePolicy) -> nn.Module:
    """The model for inference (eval mode, no gradients, on CPU, in its stored dtype)."""
    module = CausalLM(_from_pretrained(directory))
    module.requires_grad_(False)
    return module.eval()


def load_float(
    directory: Path, card: ModelCard, artifact_code: ArtifactCodePolicy
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(the model in float32, trainable; its state)."""
    module = CausalLM(_from_pretrained(directory, dtype=torch.float32))
    return module.train(), module.state_dict()


def _from_pretrained(directory: Path, **options: Any) -> nn.Module:
    return AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True, trust_remote_code=False, **options)
