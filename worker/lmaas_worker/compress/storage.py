"""How a compressed model is stored in `model.safetensors`, and loaded back.

Every weight of a Linear or convolution layer is stored in the cheapest of these encodings; all
other tensors (biases, embeddings, norms) are plain float32 under their own names.

    layout dense:    NAME.values  the whole tensor: float32, int8, or int4 packed two per byte (uint8)
    layout bitmask:  NAME.mask    one bit per weight, 1 = stored (uint8, little-endian bit order)
                     NAME.values  the stored weights only, in row-major order (same dtypes as above)
    quantized:       NAME.scale   float32 scales: [out] for int8, [out, groups] for int4

The model card's `compression.tensors` lists, for each encoded weight, its `shape`,
`quantization` (null, "int8" or "int4"), `groupSize` (int4) and `layout`; `compression.sizes`
lists layers that structured pruning shrank. A bitmask is used only where it is smaller than the
dense form, so an unstructured-pruned file shrinks with its sparsity: at 50% a float32 weight takes
4 x 0.5 + 1/8 bytes instead of 4.

Loading a compressed artifact in plain Python:

    from lmaas_worker.compress import load_artifact
    module, card = load_artifact("path/to/artifact")   # an nn.Module in eval mode, and the model card
    logits = module(inputs)

A card that names a user factory loads only with an `ArtifactCodePolicy` that allows it, passed
as `artifact_code=` (see `lmaas_worker.models`).

int8 Linear layers come back as `int8_backend.Int8Linear`, which computes in int8 only where the
layer is large enough to gain from it and otherwise keeps its weights dequantized to float32
(`int8_backend.computes_in_int8`); int4 and convolution weights are dequantized to float32 at load.
A served module is built with no storage behind its weights (on the `meta` device) and each layer
is filled from the file in the form it computes in, one tensor at a time, so loading an int8 model
never holds the float32 model: its resident memory stays under the float model's.
"""
from __future__ import annotations

import math
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from lmaas_api import contract
from lmaas_api.spec import ArtifactCodePolicy

from ..models import rebuild_model
from .int8_backend import Int8Linear
from .layers import apply_sizes, set_submodule, weight_names
from .quantize import (
    DEFAULT_INT4_GROUP_SIZE,
    dequantize_int4,
    dequantize_int8,
    pack_int4,
    quantize_int4,
    quantize_int8,
    unpack_int4,
)
from .state import WorkingModel

FORMAT = "lmaas.compressed/v1"
BYTES_PER_VALUE = {None: 4.0, "int8": 1.0, "int4": 0.5}


# --- bitmasks -----------------------------------------------------------------------------

def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    flat = mask.reshape(-1).to(torch.uint8)
    flat = torch.nn.functional.pad(flat, (0, (-flat.numel()) % 8))
    weights = (1 << torch.arange(8, dtype=torch.int32)).to(torch.uint8)
    return (flat.reshape(-1, 8) * weights).sum(dim=1, dtype=torch.int32).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, count: int) -> torch.Tensor:
    bits = (packed.to(torch.int32)[:, None] >> torch.arange(8, dtype=torch.int32)) & 1
    return bits.reshape(-1)[:count].to(torch.bool)


# --- one weight ---------------------------------------------------------------------------

def encode_weight(weight: torch.Tensor, quantization: dict[str, Any] | None
                  ) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """(manifest entry, tensors by suffix) for a layer weight; None when plain float32 is best."""
    scheme = (quantization or {}).get("scheme")
    stored: dict[str, torch.Tensor] = {}
    entry: dict[str, Any] = {"shape": list(weight.shape), "quantization": scheme}
    if scheme == "int8":
        values, stored["scale"] = quantize_int8(weight)
    elif scheme == "int4":
        group_size = int(quantization.get("groupSize") or DEFAULT_INT4_GROUP_SIZE)
        values, stored["scale"] = quantize_int4(weight, group_size)
        entry["groupSize"] = group_size
    elif scheme is None:
        values = weight.detach().to(torch.float32)
    else:
        raise ValueError(f"unknown quantization scheme {scheme!r}")
    count = values.numel()
    kept = values.reshape(-1) != 0
    per_value = BYTES_PER_VALUE[scheme]
    sparse = math.ceil(int(kept.sum()) * per_value) + math.ceil(count / 8) < math.ceil(count * per_value)
    entry["layout"] = "bitmask" if sparse else "dense"
    if sparse:
        stored["mask"] = pack_bits(kept)
        values = values.reshape(-1)[kept]
    if scheme is None and not sparse:
        return None
    stored["values"] = pack_int4(values) if scheme == "int4" else values.contiguous()
    return entry, stored


def decode_values(entry: dict[str, Any], stored: dict[str, torch.Tensor]) -> torch.Tensor:
    """A layer weight's values in its shape as `encode_weight` stored them: int8 when quantized (int4
    unpacked to int8), float32 when not."""
    shape = [int(s) for s in entry["shape"]]
    count = math.prod(shape)
    mask = unpack_bits(stored["mask"], count) if entry["layout"] == "bitmask" else None
    values = stored["values"]
    if entry.get("quantization") == "int4":
        values = unpack_int4(values, int(mask.sum()) if mask is not None else count)
    if mask is not None:
        dense = torch.zeros(count, dtype=values.dtype)
        dense[mask] = values
        values = dense
    return values.reshape(shape)


def decode_weight(entry: dict[str, Any], stored: dict[str, torch.Tensor]) -> torch.Tensor:
    """The float32 weight `encode_weight` stored."""
    values = decode_values(entry, stored)
    scheme = entry.get("quantization")
    if scheme == "int8":
        return dequantize_int8(values, stored["scale"])
    if scheme == "int4":
        return dequantize_int4(values, stored["scale"], int(entry["groupSize"]))
    return values.to(torch.float32)


# --- a whole model ------------------------------------------------------------------------

def encode(model: WorkingModel) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """(tensors for model.safetensors, the model card's `compression` entry or None if plain)."""
    model.apply_masks()
    encodable = set(weight_names(model.module))
    tensors: dict[str, torch.Tensor] = {}
    manifest: dict[str, dict[str, Any]] = {}
    for name, value in model.module.state_dict().items():
        encoded = encode_weight(value, model.quantization) if name in encodable else None
        if encoded is None:
            tensors[name] = value.detach().clone()
            continue
        manifest[name], stored = encoded
        tensors.update({f"{name}.{suffix}": t for suffix, t in stored.items()})
    if not manifest and not model.sizes:
        return tensors, None
    return tensors, {"format": FORMAT, "tensors": manifest, "sizes": model.sizes}


def decode(file: Any, section: dict[str, Any], int8_weights: Collection[str] = ()
           ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """(float32 state dict, {weight name: (int8 values, scales)}) from an open `model.safetensors`
    (`safetensors.safe_open`), read one tensor at a time. The int8 weights named in `int8_weights`
    are returned as integers and left out of the state; every other weight is decoded to float32."""
    if section.get("format") != FORMAT:
        raise ValueError(f"compression format {section.get('format')!r} is not {FORMAT!r}")
    remaining = set(file.keys())
    state: dict[str, torch.Tensor] = {}
    integers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, entry in section.get("tensors", {}).items():
        suffixes = [suffix for suffix in ("values", "mask", "scale") if f"{name}.{suffix}" in remaining]
        remaining.difference_update(f"{name}.{suffix}" for suffix in suffixes)
        stored = {suffix: file.get_tensor(f"{name}.{suffix}") for suffix in suffixes}
        if name in int8_weights and entry.get("quantization") == "int8":
            integers[name] = decode_values(entry, stored), stored["scale"]
        else:
            state[name] = decode_weight(entry, stored)
    state.update({name: file.get_tensor(name) for name in remaining})  # plain tensors; a stray one is refused
    return state, integers


def rebuild(card: dict[str, Any], artifact_code: ArtifactCodePolicy) -> nn.Module:
    """The card's architecture with structured pruning's smaller layers, weights not loaded."""
    module = rebuild_model(card["model"], artifact_code)
    apply_sizes(module, ((card.get("compression") or {}).get("sizes")) or {})
    return module


def decode_artifact(directory: str | os.PathLike, card: dict[str, Any], artifact_code: ArtifactCodePolicy
                    ) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(float32 module with the stored weights, its float32 state)."""
    module = rebuild(card, artifact_code)
    with safe_open(Path(directory) / contract.WEIGHTS_FILE, framework="pt") as file:
        section = card.get("compression")
        state = decode(file, section)[0] if section else {name: file.get_tensor(name) for name in file.keys()}
    module.load_state_dict(state, strict=True)
    return module, state


def load_compressed(directory: str | os.PathLike, card: dict[str, Any], device: str | torch.device = "cpu", *,
                    artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()) -> nn.Module:
    """The module an lmaas compressed artifact describes, ready for inference (eval mode, CPU).

    `card` is the artifact's model card (`artifacts.read_card`). int8 Linear layers are
    `int8_backend.Int8Linear`; everything else is float32. The module is built on the `meta`
    device (a factory must build there: no computation on tensor values), and its weights are
    the decoded tensors themselves, assigned rather than copied.
    """
    if torch.device(device).type != "cpu":
        raise ValueError(f"compressed artifacts run on CPU; asked for {device}")
    with torch.device("meta"):
        module = rebuild(card, artifact_code)
    linear_weights = {f"{name}.weight" for name, layer in module.named_modules() if isinstance(layer, nn.Linear)}
    path = Path(directory) / contract.WEIGHTS_FILE
    with safe_open(path, framework="pt") as file:
        state, integers = decode(file, card["compression"], linear_weights)
    missing, unexpected = module.load_state_dict(state, strict=False, assign=True)
    missing = sorted(set(missing) - set(integers))
    if missing or unexpected:
        raise ValueError(f"{path} does not hold the tensors of the model {contract.MODEL_CARD_FILE} describes: "
                         f"missing {missing}, unexpected {sorted(unexpected)}")
    for name, (values, scale) in integers.items():
        layer_name = name.removesuffix(".weight")
        set_submodule(module, layer_name, Int8Linear(values, scale, module.get_submodule(layer_name).bias))
    _build_unstored_buffers(module, card, artifact_code)
    module.requires_grad_(False)
    return module.eval()


def _build_unstored_buffers(module: nn.Module, card: dict[str, Any], artifact_code: ArtifactCodePolicy) -> None:
    """Fill the buffers that a model computes when built and does not store (`persistent=False`),
    left empty on the meta device, from a real build of the card's model."""
    unstored = [name for name, buffer in module.named_buffers() if buffer.is_meta]
    if not unstored:
        return
    built = rebuild(card, artifact_code)
    for name in unstored:
        owner, _, leaf = name.rpartition(".")
        setattr(module.get_submodule(owner), leaf, built.get_buffer(name))


def load_artifact(path: str | os.PathLike, *, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """Load any lmaas artifact, compressed or not: (module in eval mode, model card). Refuses pickles,
    and a card naming a factory that `artifact_code` does not allow."""
    from .. import artifacts

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such artifact directory")
    artifacts.refuse_pickles(root)
    card = artifacts.read_card(root)
    if card.get("compression"):
        return load_compressed(root, card, artifact_code=artifact_code), card
    module, _ = decode_artifact(root, card, artifact_code)
    module.requires_grad_(False)
    return module.eval(), card


def working_model(directory: str | os.PathLike, card: dict[str, Any], artifact_code: ArtifactCodePolicy
                  ) -> tuple[WorkingModel, dict[str, torch.Tensor]]:
    """An input artifact as the steps' starting point (float32, trainable), and its float32 state.

    A compressed input keeps what made it compressed: its zero pattern becomes masks, its smaller
    layers and its quantization carry over to the output.
    """
    module, state = decode_artifact(directory, card, artifact_code)
    section = card.get("compression") or {}
    masks = {name: state[name] != 0 for name, entry in section.get("tensors", {}).items()
             if entry.get("layout") == "bitmask"}
    return WorkingModel(module=module, definition=dict(card["model"]), masks=masks,
                        sizes=dict(section.get("sizes") or {}), quantization=card.get("quantization"),
                        pruning=card.get("sparsity")), state
