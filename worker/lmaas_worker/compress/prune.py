"""Magnitude pruning: unstructured (single weights) or structured (whole output channels).

Unstructured: weights of Linear and convolution layers are ranked by |w| (so a large negative
weight is as important as a large positive one), across all layers (`global`) or within each
(`layer`), and exactly round(sparsity x count) of the smallest become zero, held there by masks.

Structured: an output channel (a Linear row, a convolution filter) is removed physically, together
with the inputs that read it in the next layer. Only channels whose removal is provably safe are
candidates: the producer's output must flow to exactly one consumer layer through channel-wise
operations only (activations, dropout, pooling, a flatten), which `channel_links` checks on the
torch.fx graph of the model (or, where the model cannot be traced, of its submodules). The final
layer has no consumer, so a classifier keeps all its outputs. Channels are ranked by the L2 norm
of their weights within a layer; ranked across layers (`global`), each norm is divided by the mean
norm of its layer, since raw norms depend on fan-in and initialisation more than on importance
(with norm / sqrt(fan-in), digits' 256x128 MLP lost 125 of 128 channels of one layer). Every layer
keeps at least one channel.

Gradual pruning reaches the target in `iterations` rounds on the cubic schedule of Zhu & Gupta
(2017), s_i = s (1 - (1 - i/n)^3), each round followed by fine-tuning.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx
from torch import nn
from torch.nn import functional as F

from lmaas_api.card import LayerSize

from ..artifacts.layers import (
    CONVOLUTIONS,
    WEIGHT_LAYERS,
    in_size,
    out_size,
    resized_like,
    set_submodule,
    weight_layers,
)
from .state import WorkingModel


def schedule(sparsity: float, iterations: int) -> list[float]:
    """Target sparsity after each round of gradual pruning, ending at `sparsity`."""
    return [sparsity * (1 - (1 - i / iterations) ** 3) for i in range(1, iterations + 1)]


# --- unstructured ---------------------------------------------------------------------------


def magnitude_masks(module: nn.Module, sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    """{weight name: bool mask, True = kept}: the round(sparsity x n) smallest |w| are removed."""
    weights = {f"{name}.weight": layer.weight.detach() for name, layer in weight_layers(module)}
    if not weights:
        raise ValueError("the model has no Linear or convolution layer to prune")
    masks = {}
    if scope == "layer":
        for name, weight in weights.items():
            masks[name] = _keep_largest(weight.abs().reshape(-1), round(sparsity * weight.numel())).reshape(
                weight.shape
            )
        return masks
    scores = torch.cat([w.abs().reshape(-1) for w in weights.values()])
    kept = _keep_largest(scores, round(sparsity * scores.numel()))
    for name, part in zip(weights, kept.split([w.numel() for w in weights.values()])):
        masks[name] = part.reshape(weights[name].shape)
    return masks


def _keep_largest(scores: torch.Tensor, remove: int) -> torch.Tensor:
    mask = torch.ones_like(scores, dtype=torch.bool)
    if remove > 0:
        mask[torch.topk(scores, remove, largest=False, sorted=False).indices] = False
    return mask


def prune_unstructured(model: WorkingModel, sparsity: float, scope: str) -> None:
    model.masks = magnitude_masks(model.module, sparsity, scope)
    model.apply_masks()


# --- structured: which channels can go ---------------------------------------------------


@dataclass(frozen=True)
class ChannelLink:
    producer: str
    """Layer whose output channels may be removed."""
    consumer: str
    """The one layer that reads them; its inputs shrink with them."""
    factor: int
    """Consumer inputs per producer channel (spatial positions, when a flatten lies between)."""


_CHANNELWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.Hardswish,
    nn.Mish,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.Identity,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
_CHANNELWISE_FUNCTIONS = {
    F.relu,
    torch.relu,
    F.relu6,
    F.gelu,
    F.silu,
    torch.tanh,
    F.tanh,
    torch.sigmoid,
    F.sigmoid,
    F.leaky_relu,
    F.elu,
    F.dropout,
    F.max_pool1d,
    F.max_pool2d,
    F.avg_pool1d,
    F.avg_pool2d,
}
_CHANNELWISE_METHODS = {"relu", "tanh", "sigmoid", "contiguous"}


def channel_links(model: nn.Module) -> list[ChannelLink]:
    """Producer -> consumer pairs whose channels structured pruning may remove (see the module doc)."""
    links: list[ChannelLink] = []

    def visit(module: nn.Module, prefix: str) -> None:
        try:
            graph = torch.fx.symbolic_trace(module).graph
        except Exception:  # noqa: BLE001 - control flow on shapes and the like: look inside instead
            for name, child in module.named_children():
                visit(child, f"{prefix}{name}.")
            return
        links.extend(_links_in(graph, module, prefix))

    visit(model, "")
    return links


def _links_in(graph: torch.fx.Graph, root: nn.Module, prefix: str) -> list[ChannelLink]:
    modules = dict(root.named_modules())
    links = []
    for node in graph.nodes:
        producer = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(producer, WEIGHT_LAYERS) or getattr(producer, "groups", 1) != 1:
            continue
        current, flattened = node, False
        while len(current.users) == 1:
            (user,) = current.users
            if (
                not user.args
                or user.args[0] is not current
                or current in user.args[1:]
                or current in user.kwargs.values()
            ):
                break
            kind = _classify(user, modules)
            if kind == "layer":
                factor = _factor(producer, modules[user.target], flattened)
                if factor:
                    links.append(ChannelLink(prefix + node.target, prefix + user.target, factor))
                break
            if kind == "flatten":
                flattened = True
            elif kind != "channelwise":
                break
            current = user
    return links


def _classify(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, WEIGHT_LAYERS):
            return "layer"
        if isinstance(module, nn.Flatten):
            return "flatten" if module.start_dim == 1 and module.end_dim == -1 else "other"
        return "channelwise" if isinstance(module, _CHANNELWISE_MODULES) else "other"
    if node.op == "call_function":
        if node.target in _CHANNELWISE_FUNCTIONS:
            return "channelwise"
        if node.target is torch.flatten and tuple(node.args[1:]) == (1,) and not node.kwargs:
            return "flatten"
    if node.op == "call_method":
        if node.target in _CHANNELWISE_METHODS and len(node.args) == 1:
            return "channelwise"
        if node.target == "flatten" and tuple(node.args[1:]) == (1,) and not node.kwargs:
            return "flatten"
    return "other"


def _factor(producer: nn.Module, consumer: nn.Module, flattened: bool) -> int:
    """Consumer inputs per producer channel, 0 if the two do not line up channel by channel."""
    channels, inputs = out_size(producer), in_size(consumer)
    if isinstance(consumer, CONVOLUTIONS):
        return 1 if not flattened and consumer.groups == 1 and inputs == channels else 0
    if isinstance(producer, CONVOLUTIONS):
        # a flattened (N, C, H, W) map is channel-major: channel c owns inputs [c*HW, (c+1)*HW)
        return inputs // channels if flattened and inputs % channels == 0 else 0
    return 1 if inputs == channels else 0


# --- structured: removing them -------------------------------------------------------------


def channel_scores(layer: nn.Module, normalize: bool) -> torch.Tensor:
    norms = layer.weight.detach().reshape(out_size(layer), -1).norm(dim=1)
    return norms / norms.mean().clamp_min(1e-12) if normalize else norms


def choose_channels(
    model: nn.Module, links: list[ChannelLink], original: dict[str, int], sparsity: float, scope: str
) -> dict[str, torch.Tensor]:
    """{producer: sorted indices of the channels to keep} so that `sparsity` of the original channels is gone."""
    layers = {link.producer: model.get_submodule(link.producer) for link in links}
    scores = {name: channel_scores(layer, normalize=scope == "global") for name, layer in layers.items()}
    keep: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for name, score in scores.items():
            target = max(1, original[name] - round(sparsity * original[name]))
            keep[name] = torch.sort(torch.topk(score, min(target, score.numel())).indices).values
        return keep
    total = sum(original[name] for name in layers)
    remaining = {name: score.numel() for name, score in scores.items()}
    to_remove = max(0, sum(remaining.values()) - (total - round(sparsity * total)))
    ranked = sorted(
        ((float(s), name, i) for name, score in scores.items() for i, s in enumerate(score)), key=operator.itemgetter(0)
    )
    removed: dict[str, set[int]] = {name: set() for name in layers}
    for _, name, index in ranked:
        if to_remove == 0:
            break
        if remaining[name] > 1:
            removed[name].add(index)
            remaining[name] -= 1
            to_remove -= 1
    for name, score in scores.items():
        keep[name] = torch.tensor([i for i in range(score.numel()) if i not in removed[name]], dtype=torch.long)
    return keep


def remove_channels(model: WorkingModel, links: list[ChannelLink], keep: dict[str, torch.Tensor]) -> None:
    """Replace producers and consumers by smaller layers holding only the kept channels' weights."""
    rows: dict[str, torch.Tensor] = dict(keep)
    columns: dict[str, torch.Tensor] = {}
    for link in links:
        kept = keep[link.producer]
        columns[link.consumer] = (kept[:, None] * link.factor + torch.arange(link.factor)).reshape(-1)
    for name in sorted(set(rows) | set(columns)):
        layer = model.module.get_submodule(name)
        row = rows.get(name, torch.arange(out_size(layer)))
        column = columns.get(name, torch.arange(in_size(layer)))
        if len(row) == out_size(layer) and len(column) == in_size(layer):
            continue
        smaller = resized_like(layer, len(column), len(row))
        with torch.no_grad():
            smaller.weight.copy_(layer.weight[row][:, column])
            if layer.bias is not None:
                smaller.bias.copy_(layer.bias[row])
        smaller.train(layer.training)
        set_submodule(model.module, name, smaller)
        model.sizes[name] = LayerSize(inputs=len(column), outputs=len(row))
        mask = model.masks.get(f"{name}.weight")
        if mask is not None:
            model.masks[f"{name}.weight"] = mask[row][:, column]


def prune_structured(
    model: WorkingModel, sparsity: float, scope: str, original: dict[str, int] | None = None
) -> dict[str, int]:
    """Remove `sparsity` of the original output channels of every prunable layer; returns the
    original channel counts (pass them back for the next round of gradual pruning)."""
    links = channel_links(model.module)
    if not links:
        raise ValueError("structured pruning found no layer whose output channels feed exactly one other layer")
    if original is None:
        original = {link.producer: out_size(model.module.get_submodule(link.producer)) for link in links}
    keep = choose_channels(model.module, links, original, sparsity, scope)
    remove_channels(model, links, keep)
    return original
