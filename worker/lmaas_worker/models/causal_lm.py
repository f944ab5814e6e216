"""Hugging Face causal language models (transformers' AutoModelForCausalLM), as lmaas trains them.

`build_causal_lm` makes the model of `spec.model.hf`: from `config`, randomly initialised from the
current torch seed (every rank builds the same weights), its `vocab_size` and special token ids set
from the tokenizer; or from the folder of `uri`, with safetensors weights only and no code from the
folder. Either way it is wrapped in `CausalLM`, whose forward maps token ids (batch, time) to logits
(batch, time, vocab) like every lmaas model, so that the training loop, the language-modeling task,
ddp and fsdp take it unchanged. Its fsdp units are the decoder layers: the modules transformers
itself never splits across devices (`_no_split_modules`).

Whatever transformers refuses (an unknown `model_type`, a config it rejects, a folder it cannot
load) is a ConfigError naming the spec field, raised before any process group exists.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from torch import nn
from transformers import (
    CONFIG_MAPPING,
    MODEL_FOR_CAUSAL_LM_MAPPING,
    AutoConfig,
    AutoModelForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from lmaas_api.errors import ConfigError
from lmaas_api.spec import HuggingFaceConfig, HuggingFaceModel, TrainJobModel

from . import BuiltModel

PREFIX = "lm."
"""Where the transformers model's parameters sit in the wrapper's state dict."""
REJECTED_CONFIG = (ValueError, TypeError, KeyError, StrictDataclassError)
"""What transformers raises for a config it cannot build (its configs are strict dataclasses)."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}

transformers_logging.disable_progress_bar()  # a bar for each file loaded or saved is noise in a pod's log


class CausalLM(nn.Module):
    """A transformers causal language model whose forward returns the logits alone."""

    def __init__(self, lm: PreTrainedModel):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=input_ids, use_cache=False).logits

    def fsdp_units(self) -> list[nn.Module]:
        kept_whole = set(self.lm._no_split_modules or ())
        return [module for module in self.lm.modules() if type(module).__name__ in kept_whole]


def build_causal_lm(
    hf: HuggingFaceModel, tokenizer: PreTrainedTokenizerBase, folder: Path | None, sequence_length: int
) -> BuiltModel:
    """The wrapped model `hf` describes, checked against the tokenizer and the block length."""
    if hf.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        # without the package, transformers would fetch a kernel binary from the Hub and load it
        raise ConfigError(
            "spec.model.hf.attnImplementation",
            "flash_attention_2 needs the flash-attn package in the worker image; lmaas loads no downloaded kernels",
        )
    options = {"dtype": DTYPES[hf.dtype], "attn_implementation": hf.attn_implementation}
    if hf.config is not None:
        settings = {**hf.config.to_dict(), **_tokenizer_settings(tokenizer)}
        lm = _from_config(_config(settings), options)
        hf = hf.model_copy(update={"config": HuggingFaceConfig.model_validate(settings)})  # as used, for the card
    else:
        lm = _from_folder(folder, options)
        if len(tokenizer) > lm.config.vocab_size:
            raise ConfigError(
                "spec.model.hf.uri",
                f"the folder's tokenizer has {len(tokenizer)} tokens but the model embeds only {lm.config.vocab_size}",
            )
    positions = getattr(lm.config, "max_position_embeddings", None)
    if positions is not None and sequence_length > positions:
        raise ConfigError(
            "spec.dataset.sequenceLength",
            f"{sequence_length} is above the model's max_position_embeddings ({positions})",
        )
    if hf.gradient_checkpointing:
        try:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        except ValueError as error:
            raise ConfigError("spec.model.hf.gradientCheckpointing", str(error)) from error
    return BuiltModel(CausalLM(lm), TrainJobModel(hf=hf))


def _tokenizer_settings(tokenizer: PreTrainedTokenizerBase) -> dict[str, int | None]:
    """What a model from a config takes from its tokenizer."""
    return {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _config(settings: dict) -> PretrainedConfig:
    settings = dict(settings)
    model_type = settings.pop("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ConfigError(
            "spec.model.hf.config.model_type", f"{model_type!r} is not a model type that transformers knows"
        )
    try:
        config = AutoConfig.for_model(model_type, **settings)
    except REJECTED_CONFIG as error:
        raise ConfigError("spec.model.hf.config", f"transformers rejects it: {_reason(error)}") from error
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ConfigError(
            "spec.model.hf.config.model_type",
            f"{model_type!r} has no causal language model (AutoModelForCausalLM knows none)",
        )
    return config


def _from_config(config: PretrainedConfig, options: dict) -> PreTrainedModel:
    try:
        return AutoModelForCausalLM.from_config(config, **options)
    except (*REJECTED_CONFIG, ImportError) as error:
        raise ConfigError("spec.model.hf", f"transformers cannot build the model: {_reason(error)}") from error


def _from_folder(folder: Path | None, options: dict) -> PreTrainedModel:
    if folder is None:
        raise ConfigError("spec.model.hf.uri", "the model folder is not mounted (no input directory given)")
    try:
        return AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, trust_remote_code=False, **options)
    except (*REJECTED_CONFIG, OSError, ImportError, SafetensorError, RuntimeError) as error:
        # RuntimeError: weights whose shapes the config does not match
        raise ConfigError(
            "spec.model.hf.uri", f"no causal language model could be loaded from {folder}: {_reason(error)}"
        ) from error


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


@torch.no_grad()
def greedy_continuation(model: nn.Module, prompt: list[int], count: int, end_of_text: int | None) -> list[int]:
    """The `count` tokens (fewer if `end_of_text` comes) that `model` (ids -> logits, wrapped or not)
    picks one after another after `prompt`. Every rank of a sharded model must call it alike."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    picked: list[int] = []
    was_training = model.training
    model.eval()
    try:
        for _ in range(count):
            token = int(model(ids)[0, -1].argmax())
            picked.append(token)
            if token == end_of_text:
                break
            ids = torch.cat([ids, torch.tensor([[token]], device=device)], dim=1)
    finally:
        model.train(was_training)
    return picked
