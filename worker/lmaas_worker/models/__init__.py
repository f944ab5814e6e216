"""Networks to train: builtins, and user factories.

A model factory (`spec.model.factory: "pkg.mod:fn"`) is called with `spec.model.args` as keyword
arguments and returns a `torch.nn.Module`. lmaas also passes, when the function names these
parameters and `args` does not set them, what it knows from the data: `num_classes`,
`in_features` (the flat input size), `input_shape` and `vocab_size`. The arguments actually used
are recorded in the artifact's model card, so `lmaas_worker.artifacts.load` can call the
factory again. Optionally a module may define `fsdp_units()` returning the submodules that fsdp
shards one by one (default: every member of every `nn.ModuleList`, such as transformer blocks).

A Hugging Face causal language model (`spec.model.hf`) is built by `causal_lm` instead, from a
transformers config or a model folder, wrapped so that it too maps inputs (token ids) to logits.

Rebuilding from a card (`rebuild_model`) is where an artifact could run code: whoever wrote the
card chooses the factory and its arguments. So the loader takes an `ArtifactCodePolicy` from the
loading resource's spec and checks the card's `model.factory` against it before importing
anything: a builtin always loads; a factory only when that spec names it itself (a CompressJob's
distill students; a ModelService names none) or sets `trustArtifactCode: true` (unsafe). Anything
else is a ConfigError naming `model.json: model.factory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from lmaas_api import contract
from lmaas_api.errors import ConfigError
from lmaas_api.spec import ArtifactCodePolicy, ModelDefinition

from ..factory import call_builder, import_factory, refuse_unless_allowed
from . import char_gpt, cnn, mlp

BUILTIN_MODELS = {
    # name: (builder, the task it solves)
    "mlp": (mlp.build, "classification"),
    "cnn": (cnn.build, "classification"),
    "char-gpt": (char_gpt.build, "language-modeling"),
}


@dataclass(frozen=True)
class BuiltModel:
    module: nn.Module
    definition: ModelDefinition
    """The builtin or factory, with the keyword arguments actually used (the model card's `model`)."""


def data_hints(
    task: str, input_shape: list[int] | None, num_classes: int | None, vocab: list[str] | None
) -> dict[str, Any]:
    shape = list(input_shape or [])
    return {
        "num_classes": num_classes,
        "input_shape": shape or None,
        "in_features": math.prod(shape) if shape and task == "classification" else None,
        "vocab_size": len(vocab) if vocab else None,
    }


def build_model(definition: ModelDefinition, hints: dict[str, Any], task: str) -> BuiltModel:
    """Build the module `definition` names; problems are ConfigErrors naming the field."""
    if definition.builtin:
        builder, builtin_task = BUILTIN_MODELS[definition.builtin]
        if builtin_task != task:
            raise ConfigError(
                "spec.model.builtin", f"{definition.builtin} is a {builtin_task} model, but the data set is for {task}"
            )
        module, used = call_builder(builder, definition.args, hints, "spec.model.args")
    else:
        builder = import_factory(definition.factory, "spec.model.factory")
        module, used = call_builder(builder, definition.args, hints, "spec.model.args")
        if not isinstance(module, nn.Module):
            raise ConfigError(
                "spec.model.factory", f"{definition.factory} must return a torch.nn.Module, got {type(module).__name__}"
            )
    return BuiltModel(
        module, ModelDefinition(builtin=definition.builtin, factory=definition.factory, args=_plain(used))
    )


def rebuild_model(definition: ModelDefinition, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()) -> nn.Module:
    """The module a model card's `model` entry describes (weights not loaded).

    A factory is imported only if `artifact_code` allows it (by default, none is).
    """
    args = definition.args or {}
    if definition.builtin:
        return BUILTIN_MODELS[definition.builtin][0](**args)
    if definition.factory is None:
        raise ConfigError(contract.MODEL_CARD_FILE, "model names neither a builtin nor a factory")
    refuse_unless_allowed(definition.factory, "model.factory", artifact_code)
    factory = import_factory(definition.factory, "model.factory")
    module = factory(**args)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{definition.factory} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def sharding_units(module: nn.Module) -> list[nn.Module]:
    """The submodules fsdp shards one by one before the root."""
    if hasattr(module, "fsdp_units"):
        return list(module.fsdp_units())
    return [child for m in module.modules() if isinstance(m, nn.ModuleList) for child in m]


def _plain(value: Any) -> Any:
    """Arguments as JSON would hold them (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
