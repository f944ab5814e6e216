"""lmaas_worker.compress.int8_backend: integer kernels agree with the dequantized float layer."""
import pytest
import torch
from torch.nn import functional as F

from lmaas_worker.compress.int8_backend import SMALL_PROBLEM_MACS, Int8Linear, default_kernel
from lmaas_worker.compress.quantize import dequantize_int8, quantize_int8


def _layer(inputs, outputs, seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(outputs, inputs, generator=generator) / inputs ** 0.5
    bias = torch.randn(outputs, generator=generator) * 0.1
    q, scale = quantize_int8(weight)
    return q, scale, bias, dequantize_int8(q, scale)


@pytest.mark.parametrize("kernel", ["fbgemm", "int_mm"])
@pytest.mark.parametrize("batch", [1, 32])
def test_each_kernel_matches_the_dequantized_layer_up_to_activation_rounding(kernel, batch):
    q, scale, bias, dequantized = _layer(1024, 512)
    layer = Int8Linear(q, scale, bias, kernel=kernel)
    assert layer.weight_float is None  # large enough that it always runs in int8
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


def test_small_problems_run_in_float32_on_the_dequantized_weights():
    q, scale, bias, dequantized = _layer(64, 32)
    layer = Int8Linear(q, scale, bias)
    x = torch.randn(4, 64)
    assert 4 * 64 * 32 < SMALL_PROBLEM_MACS
    with torch.inference_mode():
        assert torch.allclose(layer(x), F.linear(x, dequantized, bias), atol=1e-6)


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
