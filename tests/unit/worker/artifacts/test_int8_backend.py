"""lmaas_worker.artifacts.int8_backend: integer kernels agree with the dequantized float layer, each
layer holds one form of its weights, and the model card's description says which."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lmaas_worker.artifacts.int8_backend import INT8_MIN_WEIGHTS, Int8Linear, default_kernel, describe_layer
from lmaas_worker.artifacts.quantize import dequantize_int8, quantize_int8


def _layer(inputs, outputs, seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(outputs, inputs, generator=generator) / inputs**0.5
    bias = torch.randn(outputs, generator=generator) * 0.1
    q, scale = quantize_int8(weight)
    return q, scale, bias, dequantize_int8(q, scale)


@pytest.mark.parametrize("kernel", ["fbgemm", "int_mm"])
@pytest.mark.parametrize("batch", [1, 32])
def test_each_kernel_matches_the_dequantized_layer_up_to_activation_rounding(kernel, batch):
    q, scale, bias, dequantized = _layer(1024, 512)
    layer = Int8Linear(q, scale, bias, kernel=kernel)
    assert layer.kernel == kernel  # large enough to compute in int8
    x = torch.randn(batch, 1024)
    with torch.inference_mode():
        y = layer(x)
    expected = F.linear(x, dequantized, bias)
    # activations are quantized per call: the error is a small fraction of the output's spread
    assert (y - expected).abs().max() < 0.03 * expected.abs().max()
    assert y.shape == (batch, 512) and y.dtype == torch.float32


def test_inputs_of_any_rank_keep_their_leading_dimensions():
    q, scale, bias, dequantized = _layer(1024, 512)
    x = torch.randn(2, 3, 1024)
    with torch.inference_mode():
        y = Int8Linear(q, scale, bias)(x)
    assert y.shape == (2, 3, 512)
    expected = F.linear(x, dequantized, bias)
    assert (y - expected).abs().max() < 0.03 * expected.abs().max()


def test_small_layers_compute_in_float32_on_the_dequantized_weights_and_keep_no_int8_copy():
    q, scale, bias, dequantized = _layer(64, 32)
    assert 64 * 32 < INT8_MIN_WEIGHTS
    layer = Int8Linear(q, scale, bias)
    assert layer.kernel == "float32"
    assert {name: t.dtype for name, t in layer.named_buffers()} == {"weight": torch.float32, "bias": torch.float32}
    for rows in (1, 4, 4096):  # at any batch size: the form is chosen once per layer
        x = torch.randn(rows, 64)
        with torch.inference_mode():
            assert torch.equal(layer(x), F.linear(x, dequantized, bias))


@pytest.mark.parametrize("kernel", ["fbgemm", "int_mm"])
@pytest.mark.parametrize("inputs, outputs", [(64, 32), (1024, 512)])
def test_a_layer_holds_fewer_bytes_than_the_float_layer_it_replaces(kernel, inputs, outputs):
    q, scale, bias, dequantized = _layer(inputs, outputs)
    layer = Int8Linear(q, scale, bias, kernel=kernel)
    float_bytes = 4 * (inputs * outputs + outputs)
    held = [t for t in (*layer.buffers(), *vars(layer).values()) if torch.is_tensor(t)]
    if layer.kernel == "fbgemm":  # its packed copy of the int8 weights is not a tensor: count them
        held.append(torch.ops.quantized.linear_unpack(layer._packed)[0].int_repr())
    assert sum(t.nbytes for t in held) <= float_bytes


def test_gradients_flow_to_the_inputs_through_the_dequantized_weights():
    q, scale, bias, dequantized = _layer(1024, 512)
    x = torch.randn(2, 1024, requires_grad=True)
    Int8Linear(q, scale, bias)(x).sum().backward()
    assert torch.allclose(x.grad, dequantized.sum(dim=0).expand(2, -1), atol=1e-5)


def test_the_kernel_can_be_forced_by_environment(monkeypatch):
    monkeypatch.setenv("LMAAS_INT8_KERNEL", "int_mm")
    assert default_kernel() == "int_mm"
    monkeypatch.setenv("LMAAS_INT8_KERNEL", "cuda-magic")
    with pytest.raises(ValueError, match="LMAAS_INT8_KERNEL"):
        default_kernel()


def test_the_card_says_which_layers_compute_in_int8_and_which_in_float32():
    large, small, conv = nn.Linear(1024, 512), nn.Linear(64, 32), nn.Conv2d(3, 8, 3)
    assert describe_layer(large, "int8").to_dict() == {
        "kind": "Linear",
        "stored": "int8",
        "compute": "int8",
        "kernel": default_kernel(),
        "activations": "dynamic int8, per call",
    }
    for layer in (small, conv):
        assert describe_layer(layer, "int8").to_dict() == {
            "kind": type(layer).__name__,
            "stored": "int8",
            "compute": "float32",
            "kernel": "float32 on weights dequantized at load",
        }
    assert describe_layer(large, "int4").compute == "float32"
