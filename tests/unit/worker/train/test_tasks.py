"""lmaas_worker.train.tasks: losses and held-out metrics."""

import math

import pytest
import torch

from lmaas_worker.train.tasks import TASKS


def test_accuracy_counts_hits_and_ignores_padding():
    task = TASKS["classification"]
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 1, 1, 0])
    totals = task.batch_totals(logits, labels, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    accuracy, loss = task.metric_value(totals)
    assert accuracy == pytest.approx(2 / 3) and task.reported(accuracy) == pytest.approx(200 / 3)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits[:3], labels[:3]).item())


def test_perplexity_is_exp_of_the_mean_token_loss():
    task = TASKS["language-modeling"]
    logits = torch.zeros(2, 5, 7)  # uniform over 7 tokens
    targets = torch.randint(0, 7, (2, 5))
    perplexity, loss = task.metric_value(task.batch_totals(logits, targets, torch.ones(2)))
    assert loss == pytest.approx(math.log(7)) and perplexity == pytest.approx(7.0)
    assert task.reported(perplexity) == perplexity
    assert task.loss(logits, targets).item() == pytest.approx(math.log(7))
