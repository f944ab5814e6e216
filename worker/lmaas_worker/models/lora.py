"""LoRA adapters (peft) on a Hugging Face causal language model, as `spec.peft.lora` asks.

`add_lora` wraps the transformers model inside a `CausalLM` with `peft.get_peft_model`: beside each
layer that `targetModules` names (a module name or its last parts, as peft matches them; left out,
peft's choice for the model family), rank-r matrices A and B that start as a no-op (B is zero).
peft freezes every other parameter, so the base model's weights never change and only the adapters
get gradients, optimizer state and checkpoints. The wrapper still maps token ids to logits, and the
decoder layers stay its fsdp units: each then holds frozen base weights and trained adapters, which
FSDP2 shards parameter by parameter alike.

A name in `targetModules` that matches no layer, or one that peft cannot adapt, is a ConfigError
naming the field, raised while the model is built, before any process group exists.
"""

from __future__ import annotations

from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from lmaas_api.errors import ConfigError
from lmaas_api.spec import LoraSpec

from . import BuiltModel
from .causal_lm import CausalLM

TARGET_MODULES = "spec.peft.lora.targetModules"


def lora_config(lora: LoraSpec) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
    )


def add_lora(built: BuiltModel, lora: LoraSpec) -> BuiltModel:
    """`built` (a `CausalLM`) with LoRA adapters on the layers `lora` targets, the rest frozen."""
    lm = built.module.lm
    layers = _linear_layer_names(lm)
    try:
        model = get_peft_model(lm, lora_config(lora))
    except ValueError as error:  # no name matched, or a matched module is not a layer peft adapts
        raise ConfigError(TARGET_MODULES, f"{_reason(error)} The model's linear layers: {layers}") from error
    # peft adapts what any of the names matches and ignores the others; a name that matches nothing is a mistake
    unmatched = [name for name in lora.target_modules or () if not _matches(name, model.targeted_module_names)]
    if unmatched:
        raise ConfigError(
            TARGET_MODULES, f"{', '.join(unmatched)} names no layer of the model; its linear layers: {layers}"
        )
    return BuiltModel(CausalLM(model), built.definition)


def _matches(name: str, targeted: list[str]) -> bool:
    return any(module == name or module.endswith(f".{name}") for module in targeted)


def _linear_layer_names(lm: nn.Module) -> str:
    """The distinct last names of the model's linear layers (gpt2's are transformers' Conv1D), for a message."""
    names = {name.rsplit(".", 1)[-1] for name, module in lm.named_modules() if isinstance(module, (nn.Linear, Conv1D))}
    return ", ".join(sorted(names))


def _reason(error: Exception) -> str:
    return " ".join(str(error).split())
