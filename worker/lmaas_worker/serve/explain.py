"""Feature attributions for a classifier's decision: integrated gradients and gradient x input.

Both explain the *logit* (pre-softmax score) of a target class, by default the predicted one,
with respect to each input feature:

- integrated gradients (Sundararajan et al., 2017): (x - b) * the mean of the gradient along the
  straight path from a baseline b to x, by the midpoint rule with `steps` points. The attributions
  add up to logit(x) - logit(b) (completeness), up to the quadrature error, which is returned
  as `delta` so that a client can judge it; more steps make it smaller.
- gradient x input: x * the gradient at x. One backward pass; no completeness guarantee.

The baseline defaults to zeros (for digits: a blank image).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

METHODS = ("integrated_gradients", "gradient_x_input")
MAX_ROWS_PER_PASS = 8192
"""Interpolated inputs are evaluated in chunks of at most this many rows, to bound memory."""


@dataclass(frozen=True)
class Attributions:
    attributions: torch.Tensor
    """Same shape as the inputs."""
    targets: torch.Tensor
    """(n,) the class explained for each input."""
    scores: torch.Tensor
    """(n,) logit of the target class at the input."""
    baseline_scores: torch.Tensor
    """(n,) logit of the target class at the baseline."""

    @property
    def delta(self) -> torch.Tensor:
        """sum(attributions) - (score - baseline score): zero for exact integrated gradients."""
        return self.attributions.flatten(1).sum(1) - (self.scores - self.baseline_scores)


def _target_logits(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = module(inputs)
    if logits.ndim != 2:
        raise ValueError(
            f"explain needs a classifier returning (batch, classes) logits, got shape {list(logits.shape)}"
        )
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


def explain(
    module: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    baseline: torch.Tensor | None = None,
    method: str = "integrated_gradients",
    steps: int = 64,
) -> Attributions:
    """Attributions of `inputs` (n, ...) for `targets` (n,) or, when None, the predicted classes."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    inputs = inputs.detach()
    baseline = torch.zeros_like(inputs) if baseline is None else baseline.detach().expand_as(inputs)
    with torch.no_grad():
        logits = module(inputs)
        if targets is None:
            targets = logits.argmax(dim=1)
        scores = logits.gather(1, targets.view(-1, 1)).squeeze(1)
        baseline_scores = _target_logits(module, baseline, targets)
    if method == "gradient_x_input":
        point = inputs.clone().requires_grad_(True)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad(_target_logits(module, point, targets).sum(), point)
        return Attributions(inputs * gradient, targets, scores, baseline_scores)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    n = inputs.shape[0]
    difference = inputs - baseline
    alphas = (torch.arange(steps, dtype=inputs.dtype) + 0.5) / steps  # midpoints of `steps` equal intervals
    total = torch.zeros_like(inputs)
    per_pass = max(1, MAX_ROWS_PER_PASS // max(1, n))
    for start in range(0, steps, per_pass):
        chunk = alphas[start : start + per_pass]
        shape = (len(chunk),) + (1,) * inputs.ndim
        path = (baseline.unsqueeze(0) + chunk.view(shape) * difference.unsqueeze(0)).reshape(-1, *inputs.shape[1:])
        path.requires_grad_(True)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad(_target_logits(module, path, targets.repeat(len(chunk))).sum(), path)
        total += gradient.view(len(chunk), *inputs.shape).sum(0)
    return Attributions(difference * total / steps, targets, scores, baseline_scores)
