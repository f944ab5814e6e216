"""The Hugging Face layout: the artifact is a Hugging Face model folder, plus lmaas's own files.

    config.json, generation_config.json    the model's config, its generation defaults
    model-0000N-of-0000M.safetensors       the weights in the model's dtype, in files of at most
    model.safetensors.index.json           `shards.MAX_FILE_BYTES` and at least one per rank that
                                           trained it, and their index
    tokenizer.json, tokenizer_config.json  the tokenizer (and chat_template.jinja, its chat template)
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
from torch.distributed.checkpoint.state_dict import get_model_state_dict
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from lmaas_api.card import ModelCard
from lmaas_api.spec import ArtifactCodePolicy

from ..models.causal_lm import PREFIX, CausalLM
from .shards import distinct_state, shared_atomic_directory, write_huggingface_weights
from .writing import write_metadata


def save(
    directory: Path,
    model: nn.Module,
    lm: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    card: ModelCard | None,
    metrics: dict[str, Any],
    history: dict[str, Any] | None,
    world_size: int,
    is_main: bool,
) -> int | None:
    """Write the artifact atomically from a `CausalLM` being trained (`model`, under ddp or fsdp;
    `lm`, the transformers model it wraps), each rank its part of the weights (`shards`); every rank
    calls it, and rank 0, which alone passes the card, writes the rest. Returns the size of the
    weight files in bytes on rank 0, None on the others."""
    if is_main and card.layout != "huggingface":
        raise ValueError(f"a card of layout {card.layout!r} does not describe a Hugging Face folder")
    state = distinct_state(model, get_model_state_dict(model))
    state = {name.removeprefix(PREFIX): tensor for name, tensor in state.items()}
    directory = Path(directory)
    with shared_atomic_directory(directory, is_main) as temporary:
        write_huggingface_weights(state, temporary, world_size, is_main)
        if is_main:
            # what save_pretrained writes beside the weights; FSDP2 names the class it wraps FSDP<name>
            lm.config.dtype = card.dtype
            lm.config.architectures = [type(lm).__name__.removeprefix("FSDP")]
            lm.config.save_pretrained(temporary)
            if lm.can_generate():
                lm.generation_config.save_pretrained(temporary)
            tokenizer.save_pretrained(temporary)
            write_metadata(temporary, card, metrics, history)
    return sum(file.stat().st_size for file in directory.glob("*.safetensors")) if is_main else None


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
