"""Which layers compression touches, and replacing a layer by a resized one.

Weight layers are Linear and Conv{1,2,3}d: their `weight` is what pruning ranks and quantization
stores as integers. Biases, embeddings and normalization layers are left in float32.
"""

from __future__ import annotations

from torch import nn

from lmaas_api.card import LayerSize

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def weight_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def weight_names(module: nn.Module) -> list[str]:
    """State-dict keys of the weights that pruning ranks and quantization stores as integers."""
    return [f"{name}.weight" for name, _ in weight_layers(module)]


def in_size(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def out_size(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def resized_like(layer: nn.Module, inputs: int, outputs: int) -> nn.Module:
    """A new layer like `layer` (same kind, kernel, stride, bias...) with other input/output sizes."""
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        return nn.Linear(inputs, outputs, bias=bias)
    if isinstance(layer, CONVOLUTIONS):
        if layer.groups != 1:
            raise ValueError("grouped convolutions are not resized")
        return type(layer)(
            inputs,
            outputs,
            kernel_size=layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=1,
            bias=bias,
            padding_mode=layer.padding_mode,
        )
    raise TypeError(f"cannot resize a {type(layer).__name__}")


def apply_sizes(root: nn.Module, sizes: dict[str, LayerSize]) -> None:
    """Replace each named layer of a freshly built model by one of the recorded size."""
    for name, size in sizes.items():
        layer = root.get_submodule(name)
        if not isinstance(layer, WEIGHT_LAYERS):
            raise ValueError(f"{name} is a {type(layer).__name__}, not a layer that structured pruning resizes")
        set_submodule(root, name, resized_like(layer, size.inputs, size.outputs))
