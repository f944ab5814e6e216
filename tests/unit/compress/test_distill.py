"""lmaas_worker.compress.distill: Hinton's loss, checked against a hand computation and its T-scaling."""

import math

import pytest
import torch

from lmaas_worker.compress.distill import distillation_loss


def _softmax(row, t):
    exps = [math.exp(v / t) for v in row]
    return [e / sum(exps) for e in exps]


def test_the_loss_equals_the_formula_on_a_hand_computed_case():
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[2.0, 1.0, 0.0], [1.0, 0.0, 2.0]]
    labels = [1, 2]
    t, alpha = 2.0, 0.3
    kl = 0.0
    for s, z in zip(student, teacher):
        p_t, p_s = _softmax(z, t), _softmax(s, t)
        kl += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s))
    kl /= 2  # batch mean
    ce = -sum(math.log(_softmax(s, 1.0)[y]) for s, y in zip(student, labels)) / 2
    expected = alpha * t * t * kl + (1 - alpha) * ce
    got = distillation_loss(torch.tensor(student), torch.tensor(teacher), torch.tensor(labels), t, alpha)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_alpha_zero_is_cross_entropy_and_a_student_equal_to_its_teacher_has_no_soft_loss():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    labels = torch.tensor([1, 2])
    assert float(distillation_loss(logits, logits, labels, 4.0, 1.0)) == pytest.approx(0.0, abs=1e-5)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert float(distillation_loss(logits, logits + 5.0 * torch.randn(2, 3), labels, 4.0, 0.0)) == pytest.approx(
        float(ce)
    )


def _soft_gradient(student, teacher, t):
    s = student.clone().requires_grad_(True)
    distillation_loss(s, teacher, torch.zeros(len(s), dtype=torch.long), t, 1.0).backward()
    return s.grad


def test_the_soft_gradient_is_t_times_the_probability_gap_and_stays_comparable_across_temperatures():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 10, generator=generator), torch.randn(4, 10, generator=generator)
    for t in (1.0, 2.0, 5.0):
        # d/dz_s of T^2 KL = T * (softmax(z_s/T) - softmax(z_t/T)) / batch
        expected = t * (torch.softmax(student / t, 1) - torch.softmax(teacher / t, 1)) / 4
        assert torch.allclose(_soft_gradient(student, teacher, t), expected, atol=1e-6)
    # for large T the gradient tends to (z_s - z_t - mean gap) / (classes x batch), independent of T:
    # the T^2 factor cancels the 1/T^2 the softened softmax brings
    gap = student - teacher
    limit = (gap - gap.mean(dim=1, keepdim=True)) / (10 * 4)
    g20, g40 = _soft_gradient(student, teacher, 20.0), _soft_gradient(student, teacher, 40.0)
    assert torch.allclose(g20, limit, atol=0.1 * float(limit.abs().max()))
    assert torch.allclose(g40, limit, atol=0.05 * float(limit.abs().max()))
    assert (g20.norm() / g40.norm()).item() == pytest.approx(1.0, abs=0.05)


def test_language_model_logits_are_distilled_per_token():
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 5, 7, generator=generator), torch.randn(2, 5, 7, generator=generator)
    labels = torch.randint(0, 7, (2, 5), generator=generator)
    flat = distillation_loss(student.reshape(10, 7), teacher.reshape(10, 7), labels.reshape(10), 3.0, 0.5)
    assert float(distillation_loss(student, teacher, labels, 3.0, 0.5)) == pytest.approx(float(flat))
