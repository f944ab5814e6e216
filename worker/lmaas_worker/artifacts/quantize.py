"""Affine weight quantization with real integer storage.

int8: symmetric, one scale per output channel (row of a Linear weight, output channel of a
convolution): scale = max|w| / 127, q = round(w / scale) in [-127, 127]. Zero maps to zero, so a
pruned weight stays pruned, and |w - q * scale| <= scale / 2 for every weight.

int4 (weight-only): symmetric in groups of `group_size` consecutive weights along the input
dimension of each output channel: scale = max|w| / 7, q in [-7, 7]. Rows whose length is not a
multiple of the group size are padded with zeros to one. Stored two values per byte
(`pack_int4`); computation dequantizes to float32.
"""

from __future__ import annotations

import math

import torch

INT8_MAX = 127
INT4_MAX = 7
DEFAULT_INT4_GROUP_SIZE = 128


def _scale(absmax: torch.Tensor, qmax: int) -> torch.Tensor:
    # an all-zero channel gets scale 1: its weights quantize to 0 whatever the scale
    return torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax)).to(torch.float32)


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 of weight's shape, scale float32 of shape [out_channels])."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)
    scale = _scale(rows.abs().amax(dim=1), INT8_MAX)
    q = torch.clamp(torch.round(rows / scale[:, None]), -INT8_MAX, INT8_MAX).to(torch.int8)
    return q.reshape(weight.shape), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (q.reshape(q.shape[0], -1).float() * scale[:, None]).reshape(q.shape)


def int4_groups(row_length: int, group_size: int) -> int:
    return math.ceil(row_length / group_size)


def quantize_int4(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 in [-7, 7] of weight's shape, scale float32 of shape [out_channels, groups])."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)
    length = rows.shape[1]
    groups = int4_groups(length, group_size)
    padded = torch.nn.functional.pad(rows, (0, groups * group_size - length)).reshape(rows.shape[0], groups, group_size)
    scale = _scale(padded.abs().amax(dim=2), INT4_MAX)
    q = torch.clamp(torch.round(padded / scale[:, :, None]), -INT4_MAX, INT4_MAX).to(torch.int8)
    return q.reshape(rows.shape[0], -1)[:, :length].reshape(weight.shape), scale


def dequantize_int4(q: torch.Tensor, scale: torch.Tensor, group_size: int) -> torch.Tensor:
    rows = q.reshape(q.shape[0], -1).float()
    length = rows.shape[1]
    per_weight = scale.repeat_interleave(group_size, dim=1)[:, :length]
    return (rows * per_weight).reshape(q.shape)


def pack_int4(values: torch.Tensor) -> torch.Tensor:
    """Flat int8 values in [-8, 7] to uint8 bytes, two per byte (first value in the low nibble)."""
    flat = values.reshape(-1).to(torch.int16) + 8
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_full((1,), 8)])
    pairs = flat.reshape(-1, 2)
    return (pairs[:, 0] | (pairs[:, 1] << 4)).to(torch.uint8)


def unpack_int4(packed: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` int8 values that `pack_int4` stored."""
    wide = packed.to(torch.int16)
    pairs = torch.stack([wide & 0x0F, wide >> 4], dim=1).reshape(-1)
    return (pairs[:count] - 8).to(torch.int8)
