"""The int8 CPU inference path: the one place that knows which layer computes how, and with which kernel.

`Int8Linear` is a Linear layer loaded from int8 weights (per-output-channel symmetric scales).
Whether it computes in int8 is decided once, at load, by its size (`computes_in_int8`):

- large layers keep the int8 weights and multiply with dynamically quantized activations, on one
  of two interchangeable kernels:
  - "fbgemm" (default where the build has it): `torch.ops.quantized.linear_prepack` and
    `linear_dynamic`, the C++ kernels under torch's own dynamic quantization, called directly
    rather than through the deprecated `torch.ao.quantization` Python API. Activations are
    quantized per tensor to 7 bits (`reduce_range`), which keeps x86's 16-bit pairwise
    accumulation from saturating. Fastest measured here (about 2x `_int_mm` on 512x512 and larger).
  - "int_mm": `torch._int_mm` (int8 x int8 -> int32, the op torchao's dynamic int8 builds on),
    with per-row symmetric int8 activation scales done in plain torch. Slower per call, but it
    uses no quantized tensor type, which PyTorch has deprecated; it is the fallback when fbgemm is
    missing and the path to take when those types are removed.
- small layers keep only their weights dequantized to float32 and compute in float32.

Why a fixed choice per layer: a dynamically quantized matmul pays a fixed cost per call (measure,
quantize, rescale) of about 5-10 us on one x86 core, so a small layer is faster in float32, while a
large one is faster in int8. Keeping both forms to choose per call costs 1 + 4 bytes per weight
(plus the kernel's packed copy), more than the 4 of the float model; dequantizing per call costs
as much as the kernel's fixed cost (both measured). One form per layer keeps a loaded int8 model
at most the size of the float one: about 2 bytes per weight (the int8 weights and the kernel's
packed or transposed copy) in int8 layers, 4 in float32 ones, as before quantization. The size is
judged at batch 1, the latency one request sees; at batch 32 the layers just under the line would
be up to about 1.4x faster in int8.

Convolutions and int4 weights are dequantized to float32 at load (`compressed.load`);
`describe_layer` says, for the model card, how each weight layer computes once loaded.

LMAAS_INT8_KERNEL=fbgemm|int_mm forces one kernel. Swapping the backend (say for torchao) means
replacing this module only: the stored format (int8 weights + float32 scales) does not change.
"""

from __future__ import annotations

import logging
import os
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from lmaas_api.card import LayerCompute, Scheme

from .quantize import dequantize_int8

log = logging.getLogger(__name__)

KERNEL_ENV = "LMAAS_INT8_KERNEL"
KERNELS = ("fbgemm", "int_mm")
FLOAT32 = "float32"
INT8_MIN_WEIGHTS = 1 << 17
"""in_features x out_features from which a Linear layer computes in int8 (measured on x86, one
thread, batch 1: 256x256 and 64x1024 layers, 2^16 weights, take about 6 us in float32 and 13 us in
int8; a 512x512 layer, 2^18 weights, is faster in int8)."""


def computes_in_int8(in_features: int, out_features: int) -> bool:
    return in_features * out_features >= INT8_MIN_WEIGHTS


def _fbgemm_available() -> bool:
    return hasattr(torch.ops.quantized, "linear_dynamic") and torch.backends.quantized.engine != "none"


def default_kernel() -> str:
    chosen = os.environ.get(KERNEL_ENV)
    if chosen:
        if chosen not in KERNELS:
            raise ValueError(f"{KERNEL_ENV} must be one of {KERNELS}, got {chosen!r}")
        return chosen
    return "fbgemm" if _fbgemm_available() else "int_mm"


def describe_layer(layer: nn.Module, scheme: Scheme) -> LayerCompute:
    """How a weight layer stored with quantization `scheme` computes once loaded, for the model card:
    "compute" is "int8" or "float32", and "activations" is said where it computes in int8. The int8
    kernel named is this process's; a server with another LMAAS_INT8_KERNEL or a build without
    fbgemm uses the other."""
    kind = type(layer).__name__
    if scheme == "int8" and isinstance(layer, nn.Linear) and computes_in_int8(layer.in_features, layer.out_features):
        return LayerCompute(
            kind=kind, stored=scheme, compute="int8", kernel=default_kernel(), activations="dynamic int8, per call"
        )
    return LayerCompute(kind=kind, stored=scheme, compute=FLOAT32, kernel="float32 on weights dequantized at load")


def _prepack(qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None):
    zero_points = torch.zeros(qweight.shape[0], dtype=torch.long)
    with warnings.catch_warnings():
        # the quantized tensor type is deprecated; it is only the envelope the kernel takes
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch._make_per_channel_quantized_tensor(qweight, scale.double(), zero_points, 0)
        return torch.ops.quantized.linear_prepack(quantized, bias)


class Int8Linear(nn.Module):
    """y = x W^T + b with W = int8 weights x per-row scales: in int8 with activations quantized per
    call where the layer is large enough (`computes_in_int8`), else in float32 on W dequantized once."""

    def __init__(
        self, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, kernel: str | None = None
    ):
        super().__init__()
        if qweight.dtype != torch.int8 or qweight.dim() != 2:
            raise ValueError(f"Int8Linear needs a 2-D int8 weight, got {qweight.dtype} of shape {list(qweight.shape)}")
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).contiguous())
        if not computes_in_int8(self.in_features, self.out_features):
            self.kernel = FLOAT32
            self.register_buffer("weight", dequantize_int8(qweight, scale.to(torch.float32)))
            return
        self.kernel = kernel or default_kernel()
        self.register_buffer("weight_int8", qweight.contiguous())
        self.register_buffer("weight_scale", scale.to(torch.float32).contiguous())
        self._packed = None
        if self.kernel == "fbgemm":
            try:
                self._packed = _prepack(self.weight_int8, self.weight_scale, self.bias)
            except (RuntimeError, AttributeError) as error:
                log.warning("fbgemm int8 kernel unavailable (%s); using torch._int_mm", error)
                self.kernel = "int_mm"
        if self.kernel == "int_mm":
            self._weight_t = self.weight_int8.t().contiguous()

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight if self.kernel == FLOAT32 else dequantize_int8(self.weight_int8, self.weight_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel == FLOAT32 or (x.requires_grad and torch.is_grad_enabled()):
            # integer kernels have no gradient; attributions differentiate the dequantized layer
            return F.linear(x, self.dequantized_weight(), self.bias)
        flat = x.reshape(-1, self.in_features).to(torch.float32)
        if self.kernel == "fbgemm":
            y = torch.ops.quantized.linear_dynamic(flat, self._packed, True)
        else:
            y = self._int_mm(flat)
        return y.reshape(*x.shape[:-1], self.out_features)

    def _int_mm(self, flat: torch.Tensor) -> torch.Tensor:
        x_scale = flat.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        xq = torch.clamp(torch.round(flat / x_scale), -127, 127).to(torch.int8)
        y = torch._int_mm(xq, self._weight_t).to(torch.float32) * x_scale * self.weight_scale
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"
