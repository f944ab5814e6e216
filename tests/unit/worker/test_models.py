"""lmaas_worker.models: the builtin networks and building them from a spec."""

import pytest
import torch
from torch import nn

from lmaas_api.errors import ConfigError
from lmaas_api.spec import ModelDefinition
from lmaas_worker.models import build_model, data_hints, rebuild_model, sharding_units
from lmaas_worker.models.char_gpt import CharGPT
from lmaas_worker.models.cnn import SmallCNN
from lmaas_worker.models.mlp import MLP

DIGITS_HINTS = data_hints("classification", [64], 10, None)


def test_mlp_maps_flat_or_image_inputs_to_class_scores():
    model = MLP(64, 10, hidden=[128, 64], dropout=0.1)
    assert model(torch.zeros(5, 64)).shape == (5, 10)
    assert model(torch.zeros(5, 8, 8)).shape == (5, 10)
    assert [m.out_features for m in model.fsdp_units()] == [128, 64, 10]


def test_cnn_reads_64_features_as_one_8x8_image():
    model = SmallCNN(64, 10, channels=[8, 16], hidden=32)
    assert model(torch.zeros(4, 64)).shape == (4, 10)
    with pytest.raises(ValueError, match="not a square"):
        SmallCNN(60, 10)


def test_char_gpt_gives_next_token_logits_and_never_looks_ahead():
    torch.manual_seed(0)
    model = CharGPT(vocab_size=20, context=16, layers=2, heads=2, embedding=32).eval()
    tokens = torch.randint(0, 20, (3, 16))
    logits = model(tokens)
    assert logits.shape == (3, 16, 20)
    changed = tokens.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 20
    with torch.no_grad():
        assert torch.allclose(model(changed)[:, :10], logits[:, :10].detach(), atol=1e-6)
        assert not torch.allclose(model(changed)[:, 10:], logits[:, 10:].detach())
    with pytest.raises(ValueError, match="longer than the model's context"):
        model(torch.zeros(1, 17, dtype=torch.long))
    assert sharding_units(model) == list(model.blocks)


def test_build_model_fills_in_what_the_data_knows_and_records_the_arguments():
    built = build_model(ModelDefinition(builtin="mlp", args={"hidden": [16]}), DIGITS_HINTS, "classification")
    assert built.definition == ModelDefinition(
        builtin="mlp", factory=None, args={"hidden": [16], "in_features": 64, "num_classes": 10}
    )
    again = rebuild_model(built.definition)
    assert [p.shape for p in again.parameters()] == [p.shape for p in built.module.parameters()]


def test_the_spec_args_win_over_hints():
    built = build_model(ModelDefinition(builtin="mlp", args={"num_classes": 4}), DIGITS_HINTS, "classification")
    assert built.module(torch.zeros(1, 64)).shape == (1, 4)


@pytest.mark.parametrize(
    "definition,task,field",
    [
        (ModelDefinition(builtin="mlp", args={"depth": 3}), "classification", "spec.model.args"),
        (ModelDefinition(builtin="mlp", args={"hidden": [0]}), "classification", "spec.model.args"),
        (ModelDefinition(builtin="char-gpt"), "classification", "spec.model.builtin"),
        (ModelDefinition(factory="collections:OrderedDict"), "classification", "spec.model.factory"),
    ],
)
def test_models_that_cannot_be_built_are_configuration_errors(definition, task, field):
    with pytest.raises(ConfigError) as error:
        build_model(definition, DIGITS_HINTS, task)
    assert error.value.field == field


def test_fsdp_shards_module_list_members_of_a_model_without_fsdp_units():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
            self.head = nn.Linear(4, 2)

    stack = Stack()
    assert sharding_units(stack) == list(stack.layers)
    assert sharding_units(nn.Linear(2, 2)) == []
