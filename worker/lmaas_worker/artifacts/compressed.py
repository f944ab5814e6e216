"""The compressed layout of `model.safetensors`: integer, bitmask-sparse or smaller layers.

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

int8 Linear layers load as `int8_backend.Int8Linear`, which computes in int8 only where the layer
is large enough to gain from it and otherwise keeps its weights dequantized to float32
(`int8_backend.computes_in_int8`); int4 and convolution weights are dequantized to float32 at load.
A module for inference is built with no storage behind its weights (on the `meta` device) and each
layer is filled from the file in the form it computes in, one tensor at a time, so loading an int8
model never holds the float32 model: its resident memory stays under the float model's.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from lmaas_api import contract
from lmaas_api.card import COMPRESSED_FORMAT, Compression, LayerSize, ModelCard, Quantization, StoredTensor
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
from .writing import write_artifact

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


def encode_weight(
    weight: torch.Tensor, quantization: Quantization | None
) -> tuple[StoredTensor, dict[str, torch.Tensor]] | None:
    """(card entry, tensors by suffix) for a layer weight; None when plain float32 is best."""
    scheme = quantization.scheme if quantization else None
    stored: dict[str, torch.Tensor] = {}
    group_size = None
    if scheme == "int8":
        values, stored["scale"] = quantize_int8(weight)
    elif scheme == "int4":
        group_size = quantization.group_size or DEFAULT_INT4_GROUP_SIZE
        values, stored["scale"] = quantize_int4(weight, group_size)
    else:
        values = weight.detach().to(torch.float32)
    count = values.numel()
    kept = values.reshape(-1) != 0
    per_value = BYTES_PER_VALUE[scheme]
    sparse = math.ceil(int(kept.sum()) * per_value) + math.ceil(count / 8) < math.ceil(count * per_value)
    if scheme is None and not sparse:
        return None
    if sparse:
        stored["mask"] = pack_bits(kept)
        values = values.reshape(-1)[kept]
    stored["values"] = pack_int4(values) if scheme == "int4" else values.contiguous()
    entry = StoredTensor(
        shape=list(weight.shape), quantization=scheme, group_size=group_size, layout="bitmask" if sparse else "dense"
    )
    return entry, stored


def decode_values(entry: StoredTensor, stored: dict[str, torch.Tensor]) -> torch.Tensor:
    """A layer weight's values in its shape as `encode_weight` stored them: int8 when quantized (int4
    unpacked to int8), float32 when not."""
    count = math.prod(entry.shape)
    mask = unpack_bits(stored["mask"], count) if entry.layout == "bitmask" else None
    values = stored["values"]
    if entry.quantization == "int4":
        values = unpack_int4(values, int(mask.sum()) if mask is not None else count)
    if mask is not None:
        dense = torch.zeros(count, dtype=values.dtype)
        dense[mask] = values
        values = dense
    return values.reshape(entry.shape)


def decode_weight(entry: StoredTensor, stored: dict[str, torch.Tensor]) -> torch.Tensor:
    """The float32 weight `encode_weight` stored."""
    values = decode_values(entry, stored)
    if entry.quantization == "int8":
        return dequantize_int8(values, stored["scale"])
    if entry.quantization == "int4":
        return dequantize_int4(values, stored["scale"], entry.group_size)
    return values.to(torch.float32)


# --- a whole model ------------------------------------------------------------------------


def encode(
    state: dict[str, torch.Tensor],
    weights: Collection[str],
    quantization: Quantization | None,
    sizes: dict[str, LayerSize],
) -> tuple[dict[str, torch.Tensor], Compression | None]:
    """(tensors for model.safetensors, the card's `compression` section or None if nothing needs it).

    `weights` names the layer weights in `state` that may be encoded (`layers.weight_names`), `sizes`
    the layers built smaller than the card's model builds them."""
    tensors: dict[str, torch.Tensor] = {}
    manifest: dict[str, StoredTensor] = {}
    for name, value in state.items():
        encoded = encode_weight(value, quantization) if name in weights else None
        if encoded is None:
            tensors[name] = value.detach().to(torch.float32 if value.is_floating_point() else value.dtype)
            continue
        manifest[name], stored = encoded
        tensors.update({f"{name}.{suffix}": t for suffix, t in stored.items()})
    if not manifest and not sizes:
        return tensors, None
    return tensors, Compression(format=COMPRESSED_FORMAT, tensors=manifest, sizes=sizes)


def decode(
    file: Any, section: Compression, int8_weights: Collection[str] = ()
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """(float32 state dict, {weight name: (int8 values, scales)}) from an open `model.safetensors`
    (`safetensors.safe_open`), read one tensor at a time. The int8 weights named in `int8_weights`
    are returned as integers and left out of the state; every other weight is decoded to float32."""
    remaining = set(file.keys())
    state: dict[str, torch.Tensor] = {}
    integers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, entry in section.tensors.items():
        suffixes = [suffix for suffix in ("values", "mask", "scale") if f"{name}.{suffix}" in remaining]
        remaining.difference_update(f"{name}.{suffix}" for suffix in suffixes)
        stored = {suffix: file.get_tensor(f"{name}.{suffix}") for suffix in suffixes}
        if name in int8_weights and entry.quantization == "int8":
            integers[name] = decode_values(entry, stored), stored["scale"]
        else:
            state[name] = decode_weight(entry, stored)
    state.update({name: file.get_tensor(name) for name in remaining})  # plain tensors; a stray one is refused
    return state, integers


# --- the artifact -------------------------------------------------------------------------


def save(
    directory: Path, module: nn.Module, card: ModelCard, metrics: dict[str, Any], sizes: dict[str, LayerSize]
) -> int:
    """Write `module` as an artifact atomically, its weight layers encoded as `card.quantization`
    says and in a bitmask where that is smaller, `sizes` naming the layers built smaller than
    `card.model` builds them; the card written has the `compression` section that describes the
    file (none if plain float32 weights are best). Returns the size of the weights file in bytes."""
    tensors, section = encode(module.state_dict(), set(weight_names(module)), card.quantization, sizes)
    return write_artifact(directory, tensors, card.model_copy(update={"compression": section}), metrics)


def rebuild(card: ModelCard, artifact_code: ArtifactCodePolicy) -> nn.Module:
    """The card's architecture with structured pruning's smaller layers, weights not loaded."""
    module = rebuild_model(card.model, artifact_code)
    apply_sizes(module, card.compression.sizes)
    return module


def load_float(
    directory: Path, card: ModelCard, artifact_code: ArtifactCodePolicy
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """(the card's module with the stored weights decoded to float32, trainable; its float32 state)."""
    module = rebuild(card, artifact_code)
    with safe_open(Path(directory) / contract.WEIGHTS_FILE, framework="pt") as file:
        state, _ = decode(file, card.compression)
    module.load_state_dict(state, strict=True)
    return module, state


def load(directory: Path, card: ModelCard, artifact_code: ArtifactCodePolicy) -> nn.Module:
    """The module for inference (eval mode, no gradients, on CPU): int8 Linear layers are
    `Int8Linear`, everything else float32. It is built on the `meta` device (a factory must build
    there: no computation on tensor values), and its weights are the decoded tensors themselves,
    assigned rather than copied."""
    with torch.device("meta"):
        module = rebuild(card, artifact_code)
    linear_weights = {f"{name}.weight" for name, layer in module.named_modules() if isinstance(layer, nn.Linear)}
    path = Path(directory) / contract.WEIGHTS_FILE
    with safe_open(path, framework="pt") as file:
        state, integers = decode(file, card.compression, linear_weights)
    missing, unexpected = module.load_state_dict(state, strict=False, assign=True)
    missing = sorted(set(missing) - set(integers))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not hold the tensors of the model {contract.MODEL_CARD_FILE} describes: "
            f"missing {missing}, unexpected {sorted(unexpected)}"
        )
    for name, (values, scale) in integers.items():
        layer_name = name.removesuffix(".weight")
        set_submodule(module, layer_name, Int8Linear(values, scale, module.get_submodule(layer_name).bias))
    _build_unstored_buffers(module, card, artifact_code)
    module.requires_grad_(False)
    return module.eval()


def _build_unstored_buffers(module: nn.Module, card: ModelCard, artifact_code: ArtifactCodePolicy) -> None:
    """Fill the buffers that a model computes when built and does not store (`persistent=False`),
    left empty on the meta device, from a real build of the card's model."""
    unstored = [name for name, buffer in module.named_buffers() if buffer.is_meta]
    if not unstored:
        return
    built = rebuild(card, artifact_code)
    for name in unstored:
        owner, _, leaf = name.rpartition(".")
        setattr(module.get_submodule(owner), leaf, built.get_buffer(name))
