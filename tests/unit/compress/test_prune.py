"""lmaas_worker.compress.prune: magnitude ranking by |w|, exact sparsity, physically removed channels."""

import pytest
import torch
from torch import nn

from lmaas_api.card import LayerSize
from lmaas_api.spec import ModelDefinition
from lmaas_worker.compress.prune import channel_links, magnitude_masks, prune_structured, prune_unstructured, schedule
from lmaas_worker.compress.state import WorkingModel
from lmaas_worker.models import char_gpt, cnn, mlp


def test_large_negative_weights_are_kept_and_small_ones_of_either_sign_removed():
    layer = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-9.0, 0.1, 5.0, -0.2], [0.05, -7.0, -0.01, 3.0]]))
    model = WorkingModel(nn.Sequential(layer), ModelDefinition())
    prune_unstructured(model, 0.5, "global")
    expected = torch.tensor([[-9.0, 0.0, 5.0, 0.0], [0.0, -7.0, 0.0, 3.0]])
    assert torch.equal(layer.weight.detach(), expected)
    assert torch.equal(model.masks["0.weight"], expected != 0)


class Net(nn.Module):
    """An MLP with a fixed layout (Linear layers at net.0, net.3 and net.6)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.net(x.flatten(1))


def _mlp():
    torch.manual_seed(0)
    return Net().eval()


def _linear_names(module):
    return [name for name, m in module.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_global_scope_hits_the_target_over_all_layers_and_ranks_across_them(sparsity):
    module = _mlp()
    with torch.no_grad():  # the last layer's weights are all larger than any other's
        module.net[6].weight.copy_(torch.where(module.net[6].weight < 0, -10.0, 10.0) + module.net[6].weight)
    masks = magnitude_masks(module, sparsity, "global")
    total = sum(m.numel() for m in masks.values())
    removed = sum(int((~m).sum()) for m in masks.values())
    assert removed == round(sparsity * total)
    assert bool(masks["net.6.weight"].all())  # global ranking spares the large layer entirely
    scores = torch.cat([module.net[i].weight.detach().abs().reshape(-1) for i in (0, 3)])
    kept = torch.cat([masks[f"net.{i}.weight"].reshape(-1) for i in (0, 3)])
    kept_min, removed_max = scores[kept].min(), scores[~kept].max()
    assert removed_max <= kept_min


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.8])
def test_layer_scope_hits_the_target_in_every_layer(sparsity):
    module = _mlp()
    with torch.no_grad():
        module.net[6].weight.copy_(torch.where(module.net[6].weight < 0, -10.0, 10.0) + module.net[6].weight)
    masks = magnitude_masks(module, sparsity, "layer")
    assert set(masks) == {"net.0.weight", "net.3.weight", "net.6.weight"}
    for name, mask in masks.items():
        assert int((~mask).sum()) == round(sparsity * mask.numel()), name


def test_biases_are_not_pruned():
    module = _mlp()
    model = WorkingModel(module, ModelDefinition())
    biases = [module.net[i].bias.detach().clone() for i in (0, 3, 6)]
    prune_unstructured(model, 0.7, "global")
    assert all(torch.equal(b, module.net[i].bias.detach()) for b, i in zip(biases, (0, 3, 6)))


def test_gradual_schedule_is_cubic_and_ends_at_the_target():
    steps = schedule(0.8, 4)
    assert steps[-1] == pytest.approx(0.8)
    assert steps == sorted(steps)
    assert steps[0] == pytest.approx(0.8 * (1 - 0.75**3))
    assert schedule(0.5, 1) == [0.5]


def test_channel_links_follow_the_graph_of_each_builtin():
    for module in (_mlp(), mlp.build(64, 10), mlp.build(64, 10, hidden=[32, 16, 8], dropout=0.2)):
        names = _linear_names(module)
        assert [(link.producer, link.consumer, link.factor) for link in channel_links(module)] == [
            (a, b, 1) for a, b in zip(names, names[1:])
        ]
    # the last conv reaches the classifier through pooling and a flatten: 2x2 inputs per channel
    module = cnn.build(64, 10)
    names = _linear_names(module)
    assert [(link.producer, link.consumer, link.factor) for link in channel_links(module)] == [
        (names[0], names[1], 1),
        (names[1], names[2], 4),
        (names[2], names[3], 1),
    ]
    # char-gpt cannot be traced whole (shape checks); its blocks' MLPs can, attention (residual) is left alone
    assert [
        (link.producer, link.consumer) for link in channel_links(char_gpt.build(20, context=8, layers=2, embedding=16))
    ] == [
        ("blocks.0.mlp.0", "blocks.0.mlp.2"),
        ("blocks.1.mlp.0", "blocks.1.mlp.2"),
    ]


def test_a_residual_or_shared_output_is_never_a_prunable_channel():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            h = self.a(x)
            return self.b(torch.relu(h)) + h  # h is used twice: its channels cannot go

    assert channel_links(Residual()) == []


def _zeroed_copy(module, layer_names_rows):
    """The original model with the removed channels' rows (weights and bias) set to zero."""
    import copy

    reference = copy.deepcopy(module)
    with torch.no_grad():
        for name, removed in layer_names_rows.items():
            layer = reference.get_submodule(name)
            layer.weight[removed] = 0
            layer.bias[removed] = 0
    return reference


def _kept_rows(old: torch.Tensor, new: torch.Tensor) -> list[int]:
    """Indices of the rows of `old` that `new` holds (each row of `new` is an exact copy of one)."""
    return [int((old == row).all(dim=1).nonzero()[0]) for row in new]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_structured_pruning_shrinks_the_layers_and_keeps_the_outputs_of_kept_channels(scope):
    module = _mlp()
    import copy

    before = copy.deepcopy(module)
    model = WorkingModel(module, ModelDefinition(builtin="mlp"))
    prune_structured(model, 0.5, scope)
    hidden = (module.net[0].out_features, module.net[3].out_features)
    if scope == "global":
        assert sum(hidden) == 96 and min(hidden) >= 1
    else:
        assert hidden == (64, 32)
    assert module.net[3].in_features == hidden[0] and module.net[6].in_features == hidden[1]
    assert module.net[6].out_features == 10  # the classifier keeps all its outputs
    assert model.sizes == {
        "net.0": LayerSize(inputs=64, outputs=hidden[0]),
        "net.3": LayerSize(inputs=hidden[0], outputs=hidden[1]),
        "net.6": LayerSize(inputs=hidden[1], outputs=10),
    }
    kept = _kept_rows(before.net[0].weight.detach(), module.net[0].weight.detach())
    assert kept == sorted(kept) and len(set(kept)) == hidden[0]
    x = torch.rand(16, 64)
    with torch.no_grad():  # before any fine-tuning, a kept channel computes exactly what it computed
        assert torch.equal(module.net[0](x), before.net[0](x)[:, kept])
        assert torch.equal(module.net[:2](x), before.net[:2](x)[:, kept])


def test_structured_pruning_equals_the_original_with_the_removed_channels_zeroed():
    module = _mlp()
    import copy

    before = copy.deepcopy(module)
    x = torch.rand(32, 64)
    model = WorkingModel(module, ModelDefinition(builtin="mlp"))
    prune_structured(model, 0.5, "layer")
    removed = {}
    for name in ("net.0", "net.3"):
        old, new = before.get_submodule(name), module.get_submodule(name)
        old_rows = old.weight.detach()
        if name == "net.3":
            old_rows = old_rows[:, [i for i in range(128) if i not in removed["net.0"]]]
        kept_rows = {int((old_rows == row).all(dim=1).nonzero()[0]) for row in new.weight.detach()}
        removed[name] = [i for i in range(old.out_features) if i not in kept_rows]
        assert len(removed[name]) == old.out_features // 2
    reference = _zeroed_copy(before, removed)
    with torch.no_grad():
        assert torch.allclose(module(x), reference(x), atol=1e-6)


def test_structured_pruning_of_a_cnn_removes_filters_and_the_classifier_columns_they_fed():
    torch.manual_seed(0)
    module = cnn.build(64, 10, channels=[8, 16], hidden=32)
    model = WorkingModel(module, ModelDefinition(builtin="cnn"))
    before = sum(p.numel() for p in module.parameters())
    prune_structured(model, 0.5, "layer")
    conv1, conv2, hidden, output = (module.get_submodule(n) for n in _linear_names(module))
    assert (conv1.out_channels, conv2.in_channels) == (4, 4)
    assert (conv2.out_channels, hidden.in_features) == (8, 8 * 4)
    assert (hidden.out_features, output.in_features, output.out_features) == (16, 16, 10)
    assert module(torch.rand(3, 64)).shape == (3, 10)
    assert sum(p.numel() for p in module.parameters()) < 0.4 * before
