"""lmaas_worker.artifacts.quantize: symmetric per-channel int8 and grouped int4, real integer storage."""

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from lmaas_worker.artifacts.quantize import (
    dequantize_int4,
    dequantize_int8,
    pack_int4,
    quantize_int4,
    quantize_int8,
    unpack_int4,
)


def _weight(out=16, inputs=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # channels of very different ranges: a per-tensor scale would crush the small ones
    return torch.randn(out, inputs, generator=generator) * torch.logspace(-3, 1, out)[:, None]


def test_int8_round_trip_is_within_half_a_scale_step_in_every_channel():
    weight = _weight()
    q, scale = quantize_int8(weight)
    assert q.dtype == torch.int8 and scale.shape == (16,) and scale.dtype == torch.float32
    error = (dequantize_int8(q, scale) - weight).abs()
    assert bool((error <= scale[:, None] / 2 + 1e-7 * scale[:, None]).all())
    assert torch.equal(scale, weight.abs().amax(dim=1) / 127)
    assert int(q.abs().max()) == 127  # symmetric: the largest |w| of a channel maps to +-127
    # per channel: the smallest channel is still resolved (a single scale would round it to zero)
    assert int(torch.count_nonzero(q[0])) > 30


def test_int8_keeps_zero_exactly_and_handles_an_all_zero_channel():
    weight = _weight()
    weight[3] = 0
    weight[5, ::2] = 0
    q, scale = quantize_int8(weight)
    assert bool((q[3] == 0).all()) and bool((q[5, ::2] == 0).all())
    assert torch.isfinite(scale).all()
    assert torch.equal(dequantize_int8(q, scale)[3], torch.zeros(40))


def test_conv_weights_get_one_scale_per_output_channel():
    weight = torch.randn(8, 3, 3, 3)
    q, scale = quantize_int8(weight)
    assert q.shape == weight.shape and scale.shape == (8,)
    assert bool(((dequantize_int8(q, scale) - weight).abs() <= scale[:, None, None, None] / 2 + 1e-7).all())


def test_int8_storage_is_really_int8_in_the_file(tmp_path):
    weight = _weight(64, 256)
    q, scale = quantize_int8(weight)
    save_file({"w.values": q, "w.scale": scale}, tmp_path / "q.safetensors")
    save_file({"w": weight}, tmp_path / "f.safetensors")
    raw = (tmp_path / "q.safetensors").read_bytes()
    (header_length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_length])
    assert header["w.values"]["dtype"] == "I8"
    start, end = header["w.values"]["data_offsets"]
    assert end - start == 64 * 256  # one byte per weight
    float_size = (tmp_path / "f.safetensors").stat().st_size
    assert (tmp_path / "q.safetensors").stat().st_size < 0.27 * float_size


@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_int4_round_trip_is_within_half_a_scale_step_in_every_group(group_size):
    weight = _weight(8, 100)  # 100 is not a multiple of the group size: the last group is short
    q, scale = quantize_int4(weight, group_size)
    groups = -(-100 // group_size)
    assert scale.shape == (8, groups) and int(q.abs().max()) <= 7
    step = scale.repeat_interleave(group_size, dim=1)[:, :100]
    assert bool(((dequantize_int4(q, scale, group_size) - weight).abs() <= step / 2 + 1e-7 * step).all())


def test_int4_values_pack_two_per_byte_and_unpack_exactly():
    values = torch.randint(-8, 8, (101,), dtype=torch.int8)
    packed = pack_int4(values)
    assert packed.dtype == torch.uint8 and packed.numel() == 51
    assert torch.equal(unpack_int4(packed, 101), values)
