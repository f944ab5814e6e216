"""The int8 CPU inference path: the one place that knows which integer kernel runs.

`Int8Linear` holds a Linear layer's int8 weights (per-output-channel symmetric scales) and
multiplies with dynamically quantized activations. Two interchangeable kernels:

- "fbgemm" (default where the build has it): `torch.ops.quantized.linear_prepack` and
  `linear_dynamic`, the C++ kernels under torch's own dynamic quantization, called directly rather
  than through the deprecated `torch.ao.quantization` Python API. Activations are quantized per
  tensor to 7 bits (`reduce_range`), which keeps x86's 16-bit pairwise accumulation from
  saturating. Fastest measured here (about 2x `_int_mm` on 512x512 and larger layers).
- "int_mm": `torch._int_mm` (int8 x int8 -> int32, the op torchao's dynamic int8 builds on),
  with per-row symmetric int8 activation scales done in plain torch. Slower per call, but it uses
  no quantized tensor type, which PyTorch has deprecated; it is the fallback when fbgemm is missing
  and the path to take when those types are removed.

LMAAS_INT8_KERNEL=fbgemm|int_mm forces one. Swapping the backend (say for torchao) means
replacing this module only: the stored format (int8 weights + float32 scales) does not change.

A dynamically quantized matmul pays a fixed cost per call (measure, quantize, rescale) of about
5-10 us on one x86 core. Below SMALL_PROBLEM_MACS multiply-accumulates per call, plain float32 is
faster, so layers small enough to ever fall under it keep a float32 copy of their dequantized
weights (under 2 MiB each) and use it for such calls; larger layers always run in int8.
"""
from __future__ import annotations

import logging
import os
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from .quantize import dequantize_int8

log = logging.getLogger(__name__)

KERNEL_ENV = "LMAAS_INT8_KERNEL"
KERNELS = ("fbgemm", "int_mm")
SMALL_PROBLEM_MACS = 1 << 19
"""rows x in_features x out_features under which float32 beats the int8 kernels (measured on x86,
one thread: a 64x128 layer at batch 32 and a 256x256 layer at batch 1 are faster in float32, a
128x128 layer at batch 32 and a 512x512 layer at batch 1 are faster in int8)."""


def _fbgemm_available() -> bool:
    return hasattr(torch.ops.quantized, "linear_dynamic") and torch.backends.quantized.engine != "none"


def default_kernel() -> str:
    chosen = os.environ.get(KERNEL_ENV)
    if chosen:
        if chosen not in KERNELS:
            raise ValueError(f"{KERNEL_ENV} must be one of {KERNELS}, got {chosen!r}")
        return chosen
    return "fbgemm" if _fbgemm_available() else "int_mm"


def _prepack(qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None):
    zero_points = torch.zeros(qweight.shape[0], dtype=torch.long)
    with warnings.catch_warnings():
        # the quantized tensor type is deprecated; it is only the envelope the kernel takes
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch._make_per_channel_quantized_tensor(qweight, scale.double(), zero_points, 0)
        return torch.ops.quantized.linear_prepack(quantized, bias)


class Int8Linear(nn.Module):
    """y = x W^T + b with W = int8 weights x per-row scales; activations quantized per call."""

    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                 kernel: str | None = None):
        super().__init__()
        if qweight.dtype != torch.int8 or qweight.dim() != 2:
            raise ValueError(f"Int8Linear needs a 2-D int8 weight, got {qweight.dtype} of shape {list(qweight.shape)}")
        self.out_features, self.in_features = qweight.shape
        self.kernel = kernel or default_kernel()
        self.register_buffer("weight_int8", qweight.contiguous())
        self.register_buffer("weight_scale", scale.to(torch.float32).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).contiguous())
        small = self.in_features * self.out_features < SMALL_PROBLEM_MACS
        self.register_buffer("weight_float", dequantize_int8(qweight, self.weight_scale) if small else None,
                             persistent=False)
        self._float_below = -(-SMALL_PROBLEM_MACS // self.out_features)
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
        return self.weight_float if self.weight_float is not None else dequantize_int8(self.weight_int8, self.weight_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # rows x in x out < SMALL_PROBLEM_MACS, i.e. x.numel() x out < SMALL_PROBLEM_MACS
        if self.weight_float is not None and x.numel() < self._float_below:
            return F.linear(x, self.weight_float, self.bias)
        if x.requires_grad and torch.is_grad_enabled():
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
