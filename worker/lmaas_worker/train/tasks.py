"""What a task means for training and evaluation: the loss, and the held-out metric.

classification: cross-entropy over class logits (batch, classes); metric accuracy, reported in
points (0-100, as CompressJob's maxAccuracyDrop counts them). language-modeling: next-token
cross-entropy over logits (batch, time, vocab); metric perplexity, exp of the mean per-token loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Task:
    name: str
    metric: str
    higher_is_better: bool

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch."""
        if self.name == "language-modeling":
            return F.cross_entropy(output.flatten(0, 1).float(), target.flatten())
        return F.cross_entropy(output.float(), target)

    def batch_totals(self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """[loss sum, hits, count] of a batch, counting sample i `weight[i]` times (0 for padding)."""
        weight = weight.to(torch.float64)
        if self.name == "language-modeling":
            per_token = F.cross_entropy(output.flatten(0, 1).float(), target.flatten(), reduction="none")
            per_sample = per_token.view(target.shape).sum(dim=1).to(torch.float64)
            tokens = float(target.shape[1])
            return torch.stack(
                [
                    (per_sample * weight).sum(),
                    torch.zeros((), dtype=torch.float64, device=weight.device),
                    weight.sum() * tokens,
                ]
            )
        per_sample = F.cross_entropy(output.float(), target, reduction="none").to(torch.float64)
        hits = (output.argmax(dim=1) == target).to(torch.float64)
        return torch.stack([(per_sample * weight).sum(), (hits * weight).sum(), weight.sum()])

    def metric_value(self, totals: torch.Tensor) -> tuple[float, float]:
        """(metric, mean loss) from summed batch totals; accuracy as a fraction in [0, 1]."""
        loss_sum, hits, count = (float(v) for v in totals)
        mean_loss = loss_sum / count
        if self.name == "language-modeling":
            return math.exp(mean_loss), mean_loss
        return hits / count, mean_loss

    def reported(self, value: float) -> float:
        """The metric as progress lines and metrics.json report it (accuracy in points)."""
        return 100.0 * value if self.metric == "accuracy" else value


TASKS = {
    "classification": Task("classification", "accuracy", higher_is_better=True),
    "language-modeling": Task("language-modeling", "perplexity", higher_is_better=False),
}
