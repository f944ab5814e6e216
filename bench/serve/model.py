"""The benchmark's model: the builtin digits MLP, trained briefly, saved as an lmaas artifact."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.nn import functional as F

from lmaas_api import contract
from lmaas_api.card import ModelCard, read_card
from lmaas_worker.artifacts import dense
from lmaas_worker.data import digits
from lmaas_worker.models import mlp

EPOCHS = 30


def make_digits_artifact(directory: Path, seed: int = 0) -> dict:
    """Train the mlp on digits (a few seconds) and save it; reuse an artifact already there."""
    directory = Path(directory)
    if (directory / contract.MODEL_CARD_FILE).exists():
        return json.loads((directory / contract.METRICS_FILE).read_text())
    torch.manual_seed(seed)
    bundle = digits.load(seed=seed)
    x, y = bundle.train.tensors
    vx, vy = bundle.val.tensors
    module = mlp.build(in_features=64, num_classes=10)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(module(x[batch]), y[batch]).backward()
            optimizer.step()
    module.eval()
    with torch.no_grad():
        accuracy = (module(vx).argmax(1) == vy).float().mean().item()
    card = ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "model": {"builtin": "mlp", "factory": None, "args": {"in_features": 64, "num_classes": 10}},
            "task": "classification",
            "input": bundle.input_spec,
            "numClasses": 10,
            "classLabels": bundle.class_labels,
            "vocab": None,
            "dtype": "float32",
            "quantization": None,
            "producer": {"kind": "bench", "name": "bench-serve-digits"},
        }
    )
    metrics = {"accuracy": accuracy, "epochs": EPOCHS}
    dense.save(directory, module.state_dict(), card, metrics)
    read_card(directory)
    return metrics
