"""Knowledge distillation (Hinton, Vinyals and Dean, 2015).

The input model is the teacher: frozen (no gradients) and in eval mode (no dropout). The student,
a new network from the step's `student` definition, learns from

    alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, labels)

with the KL divergence computed from the student's log-softmax, averaged over the batch
(`F.kl_div(log_softmax(z_s / T), softmax(z_t / T), reduction="batchmean")`; for a language model
every token is a row). The T^2 factor keeps the soft term's gradient, which scales as 1/T^2,
comparable across temperatures.

The same student is also trained without a teacher (plain cross-entropy, the same seed, so the
same initial weights and batches, epochs, learning rate and optimizer): the report shows what the
teacher added.

Both students train with SGD and momentum 0.9, Hinton's recipe, with which the T^2 factor does
what it is there for. With Adam, whose per-parameter normalisation undoes any loss scaling, the
distilled student did worse than the one trained alone in every setting measured on digits (MLP
students of 8 to 128 units, T from 2 to 8, alpha from 0.2 to 1, 8 seeds); with SGD it did better
on average and never worse in the recommended setting (see tests/compress and bench/compress).
SGD wants a larger learning rate than Adam: about 0.05 for the builtin models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from lmaas_api.card import ModelCard
from lmaas_api.spec import DistillStep, ModelDefinition

from ..models import build_model, data_hints
from ..train.tasks import Task
from .training import train_epochs


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float
) -> torch.Tensor:
    """Hinton's loss; logits (batch, classes) or (batch, time, vocab), labels (batch) or (batch, time)."""
    classes = student_logits.shape[-1]
    student = student_logits.reshape(-1, classes).float()
    teacher = teacher_logits.reshape(-1, classes).float()
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean"
    )
    hard = F.cross_entropy(student, labels.reshape(-1))
    return alpha * temperature**2 * soft + (1 - alpha) * hard


@dataclass
class DistillResult:
    student: nn.Module
    definition: ModelDefinition
    alone: nn.Module
    """The same student trained without a teacher."""
    losses: list[float]
    alone_losses: list[float]


def size_warning(teacher_parameters: int, student_parameters: int) -> str | None:
    """What to tell the user when the student is not smaller than its teacher: nothing in a distill
    step's `student` definition has to be smaller, and a student that is not brings no compression."""
    if student_parameters < teacher_parameters:
        return None
    return (
        f"the distilled student has {student_parameters:,} parameters, not fewer than its teacher's "
        f"{teacher_parameters:,}: distillation made the model no smaller"
    )


def build_student(step: DistillStep, card: ModelCard, task: Task, seed: int) -> tuple[nn.Module, ModelDefinition]:
    """A freshly initialised student (the same weights for the same seed), and its definition for the card."""
    hints = data_hints(card.task, card.input.shape if card.input else None, card.num_classes, card.vocab)
    torch.manual_seed(seed)
    built = build_model(step.student, hints, card.task)
    return built.module, built.definition


def distill(
    teacher: nn.Module,
    step: DistillStep,
    card: ModelCard,
    data: Dataset,
    task: Task,
    seed: int,
    on_epoch: Callable[[str, int, float], None] | None = None,
) -> DistillResult:
    teacher.eval()
    teacher.requires_grad_(False)

    def with_teacher(student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft_targets = teacher(x)
        return distillation_loss(student(x), soft_targets, y, step.temperature, step.alpha)

    def without_teacher(student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return task.loss(student(x), y)

    runs = {}
    for name, batch_loss in (("distilled", with_teacher), ("alone", without_teacher)):
        student, definition = build_student(step, card, task, seed)
        losses = train_epochs(
            student,
            data,
            epochs=step.epochs,
            learning_rate=step.learning_rate,
            batch_size=step.batch_size,
            seed=seed,
            batch_loss=batch_loss,
            optimizer="sgd",
            on_epoch=(lambda epoch, loss, name=name: on_epoch(name, epoch, loss)) if on_epoch else None,
        )
        runs[name] = (student, definition, losses)
    student, definition, losses = runs["distilled"]
    alone, _, alone_losses = runs["alone"]
    return DistillResult(student, definition, alone, losses, alone_losses)
