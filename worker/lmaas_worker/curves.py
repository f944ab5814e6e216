"""The human-facing plot of a run: training loss and the held-out metric against the step."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(history: dict[str, Any], path: Path, title: str = "") -> None:
    """Write a PNG with loss (left) and the eval metric (right) against the optimizer step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, metric_axes = figure.subplots(1, 2)
    train = history.get("train") or []
    if train:
        loss_axes.plot([s for s, _ in train], [v for _, v in train], color="tab:blue")
    loss_axes.set(xlabel="step", ylabel="training loss", title="loss")
    loss_axes.grid(alpha=0.3)
    evals = history.get("eval") or []
    metric = history.get("evalMetric") or "eval metric"
    if evals:
        metric_axes.plot([s for s, _ in evals], [v for _, v in evals], marker="o", color="tab:orange")
    metric_axes.set(xlabel="step", ylabel=metric, title=f"held-out {metric}")
    metric_axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
