"""lmaas_worker.train.optim: optimizers and the learning-rate schedule."""

import math

import pytest
import torch

from lmaas_api.spec import Hyperparameters
from lmaas_worker.train.optim import build_optimizer, lr_factor


def factors(schedule, warmup=0, total=100):
    """The factors of `total` equal steps, warm-up lasting the first `warmup` of them."""
    return [lr_factor(step / total, (step + 1) / total, schedule, warmup / total) for step in range(total)]


def test_warmup_rises_linearly_to_the_peak():
    rising = factors("constant", warmup=10)[:11]
    assert rising[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert rising[10] == 1.0


def test_constant_stays_at_the_peak():
    assert set(factors("constant")) == {1.0}


def test_cosine_falls_from_the_peak_towards_zero_half_way_at_the_midpoint():
    values = factors("cosine", warmup=10, total=110)
    assert values[10] == 1.0
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[60] == pytest.approx(0.5)
    assert 0 < values[-1] < 0.01


def test_linear_falls_evenly_to_zero():
    values = factors("linear", total=100)
    assert values[0] == 1.0 and values[50] == pytest.approx(0.5) and values[-1] == pytest.approx(0.01)
    assert max(abs((a - b) - 0.01) for a, b in zip(values, values[1:])) < 1e-12


def test_optimizers_follow_the_hyperparameters():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adamw = build_optimizer(params, Hyperparameters(learning_rate=0.01, weight_decay=0.1))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.1
    sgd = build_optimizer(params, Hyperparameters(optimizer="sgd"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert build_optimizer(params, Hyperparameters(optimizer="sgd", momentum=0.5)).defaults["momentum"] == 0.5
    assert isinstance(build_optimizer(params, Hyperparameters(optimizer="adam")), torch.optim.Adam)
    assert math.isclose(build_optimizer(params, Hyperparameters()).defaults["weight_decay"], 0.0)


def test_the_schedule_depends_on_how_far_the_run_has_got_not_on_the_size_of_its_steps():
    # the same point of a run reached by steps of 1/100 and of 1/50 of it: the same rate after warm-up
    for schedule in ("cosine", "linear", "constant"):
        assert lr_factor(0.6, 0.61, schedule, 0.05) == lr_factor(0.6, 0.62, schedule, 0.05)
    # warm-up ends at the same point of the run whatever the size of the steps that reach it
    assert lr_factor(0.04, 0.05, "cosine", 0.05) == lr_factor(0.03, 0.05, "cosine", 0.05) == 1.0
