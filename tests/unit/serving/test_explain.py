"""Attributions: integrated gradients add up (completeness); both methods are exact on linear models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmaas_worker.models.mlp import MLP
from lmaas_worker.serve import explain as explaining


@pytest.fixture
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return MLP(64, 10, hidden=(32, 16)).eval()


def _logit(module, x, target):
    with torch.no_grad():
        return module(x)[torch.arange(len(x)), target]


@pytest.mark.parametrize("steps, tolerance", [(64, 0.05), (256, 0.02)])
def test_integrated_gradients_add_up_to_the_change_of_the_logit(mlp, steps, tolerance):
    torch.manual_seed(1)
    x = torch.rand(5, 64)
    baseline = torch.full((64,), 0.1)
    result = explaining.explain(mlp, x, baseline=baseline, steps=steps)
    predicted = _logit(mlp, x, mlp(x).argmax(1))
    assert torch.equal(result.targets, mlp(x).argmax(1))
    torch.testing.assert_close(result.scores, predicted)
    torch.testing.assert_close(result.baseline_scores, _logit(mlp, baseline.expand(5, 64), result.targets))
    gap = result.scores - result.baseline_scores
    assert (result.attributions.sum(1) - gap).abs().max() <= tolerance * gap.abs().max() + 1e-4
    torch.testing.assert_close(result.delta, result.attributions.sum(1) - gap)


def test_more_steps_shrink_the_error(mlp):
    x = torch.rand(3, 64)
    coarse = explaining.explain(mlp, x, steps=4).delta.abs().sum()
    fine = explaining.explain(mlp, x, steps=256).delta.abs().sum()
    assert fine < coarse


def test_on_a_linear_model_both_methods_are_exact():
    torch.manual_seed(2)
    linear = nn.Linear(8, 3)
    x = torch.randn(4, 8)
    target = torch.tensor([0, 1, 2, 1])
    ig = explaining.explain(linear, x, target, steps=3)
    expected = linear.weight[target] * x  # baseline zero: w_c * (x - 0)
    torch.testing.assert_close(ig.attributions, expected.detach())
    torch.testing.assert_close(ig.delta, torch.zeros(4), atol=1e-5, rtol=0)
    gxi = explaining.explain(linear, x, target, method="gradient_x_input")
    torch.testing.assert_close(gxi.attributions, expected.detach())


def test_a_given_target_is_explained_and_chunking_does_not_change_the_result(mlp, monkeypatch):
    x = torch.rand(6, 64)
    target = torch.tensor([3] * 6)
    whole = explaining.explain(mlp, x, target, steps=40)
    assert torch.equal(whole.targets, target)
    monkeypatch.setattr(explaining, "MAX_ROWS_PER_PASS", 7)  # one step (6 rows) per pass
    chunked = explaining.explain(mlp, x, target, steps=40)
    torch.testing.assert_close(chunked.attributions, whole.attributions)


def test_unknown_method_and_bad_steps(mlp):
    with pytest.raises(ValueError, match="unknown method"):
        explaining.explain(mlp, torch.rand(1, 64), method="shap")
    with pytest.raises(ValueError, match="steps"):
        explaining.explain(mlp, torch.rand(1, 64), steps=0)
