"""The peft layout: the artifact is the adapter folder peft writes, plus lmaas's own files.

    adapter_config.json                    the LoRA configuration; base_model_name_or_path is the
                                           base's pvc:// uri when it came from one
    adapter_model.safetensors              the adapters' weights alone
    tokenizer.json, tokenizer_config.json  the tokenizer (the base model's)
    model.json, metrics.json, curves.png   the card (layout "peft", its `adapter` saying where
                                           the base is), metrics and curves
    base/                                  the base model as a Hugging Face folder, only when it
                                           exists nowhere else (built from model.hf.config)
    merged/                                with spec.peft.mergeAdapter: the model with the
                                           adapters merged in, a plain Hugging Face folder

`PeftModel.from_pretrained(base, directory)` loads the adapters onto the base model;
`AutoModelForCausalLM.from_pretrained(directory / "merged")` loads the merged model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import PeftModelForCausalLM, get_peft_model
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedTokenizerBase

from lmaas_api.card import Adapter, ModelCard
from lmaas_api.spec import LoraSpec

from ..models.causal_lm import PREFIX
from ..models.lora import lora_config
from .files import atomic_directory
from .writing import write_metadata

WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_README = "README.md"
BASE_FOLDER = "base"
MERGED_FOLDER = "merged"


def save(
    directory: Path,
    state: dict[str, torch.Tensor],
    config: PretrainedConfig,
    tokenizer: PreTrainedTokenizerBase,
    card: ModelCard,
    metrics: dict[str, Any],
    history: dict[str, Any] | None = None,
) -> int:
    """Write the artifact atomically from the full state dict of a trained `CausalLM` with LoRA
    adapters and its base model's config, writing the folders `card.adapter` names; returns the size
    of the adapters' weights file in bytes."""
    adapter = card.adapter
    if card.layout != "peft" or adapter is None:
        raise ValueError(f"a card of layout {card.layout!r} without an adapter does not describe a peft folder")
    directory = Path(directory)
    with atomic_directory(directory) as temporary:
        model = _adapted(config, adapter, state)
        model.peft_config[model.active_adapter].base_model_name_or_path = adapter.base_uri
        # the embeddings are never resized, and "auto" would look the base up on the Hub
        model.save_pretrained(temporary, save_embedding_layers=False)
        (temporary / PEFT_README).unlink()  # an unfilled template of a Hub model card; lmaas's card is model.json
        tokenizer.save_pretrained(temporary)
        if adapter.base_path is not None:
            base = _adapted(config, adapter, state).unload()
            base.save_pretrained(temporary / adapter.base_path)
            tokenizer.save_pretrained(temporary / adapter.base_path)
        if adapter.merged_path is not None:
            # safe_merge adds to a copy of each weight: the state's tensors stay as they are
            merged = _adapted(config, adapter, state).merge_and_unload(safe_merge=True)
            merged.save_pretrained(temporary / adapter.merged_path)
            tokenizer.save_pretrained(temporary / adapter.merged_path)
        write_metadata(temporary, card, metrics, history)
    return (directory / WEIGHTS_FILE).stat().st_size


def _adapted(config: PretrainedConfig, adapter: Adapter, state: dict[str, torch.Tensor]) -> PeftModelForCausalLM:
    """The base model with the adapters `adapter` describes, holding the tensors of `state`."""
    lora = LoraSpec(r=adapter.r, alpha=adapter.alpha, dropout=adapter.dropout, target_modules=adapter.target_modules)
    with torch.device("meta"):  # no storage of its own: it holds the state's tensors
        model = get_peft_model(AutoModelForCausalLM.from_config(config), lora_config(lora))
    model.load_state_dict(
        {name.removeprefix(PREFIX): tensor for name, tensor in state.items()}, strict=True, assign=True
    )
    model.get_base_model().tie_weights()  # assigning gave tied parameters (embeddings and head) a tensor each
    return model
