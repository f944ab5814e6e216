"""Small artifacts for the serving tests, written with the real writer (`artifacts.dense.save`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_api.spec import ArtifactCodePolicy, ModelDefinition
from lmaas_worker.artifacts import dense, load
from lmaas_worker.data import digits, shakespeare
from lmaas_worker.models import rebuild_model


def _card(model: ModelDefinition, task: str, **fields: Any) -> ModelCard:
    return ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "model": model,
            "task": task,
            "dtype": "float32",
            "quantization": None,
            "producer": {"kind": "TrainJob", "name": "serving-tests"},
            **fields,
        }
    )


def _digits_card(model: ModelDefinition) -> ModelCard:
    return _card(
        model,
        "classification",
        input={"shape": [64], "dtype": "float32"},
        numClasses=10,
        classLabels=[str(d) for d in range(10)],
        vocab=None,
    )


def digits_mlp(directory: Path, epochs: int = 3) -> Path:
    """The builtin mlp trained briefly on digits (about 90% accurate): predictions differ by input."""
    torch.manual_seed(0)
    bundle = digits.load(seed=0)
    x, y = bundle.train.tensors
    definition = ModelDefinition(builtin="mlp", args={"in_features": 64, "num_classes": 10})
    module = rebuild_model(definition)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(module(x[batch]), y[batch]).backward()
            optimizer.step()
    dense.save(directory, module.state_dict(), _digits_card(definition), {"epochs": epochs})
    return directory


def factory_mlp(directory: Path, factory: str, **args: Any) -> Path:
    """An untrained digits-shaped classifier built by a test factory (see tests.serving.models); its
    servers need `--trust-artifact-code`."""
    definition = ModelDefinition(
        factory=f"tests.serving.models:{factory}", args={"in_features": 64, "num_classes": 10, **args}
    )
    quick = {k: v for k, v in definition.args.items() if k not in ("load_delay", "forward_delay")}
    from lmaas_worker.models.mlp import MLP

    torch.manual_seed(1)
    dense.save(directory, MLP(hidden=(32,), **quick).state_dict(), _digits_card(definition), {})
    return directory


def char_gpt(directory: Path, context: int = 16) -> Path:
    """A tiny untrained char-gpt over the shakespeare vocabulary."""
    torch.manual_seed(0)
    vocab = sorted(set(shakespeare.text()))
    definition = ModelDefinition(
        builtin="char-gpt",
        args={"vocab_size": len(vocab), "context": context, "layers": 1, "heads": 2, "embedding": 16},
    )
    module = rebuild_model(definition)
    card = _card(
        definition,
        "language-modeling",
        input={"shape": [context], "dtype": "int64"},
        numClasses=None,
        classLabels=None,
        vocab=vocab,
    )
    dense.save(directory, module.state_dict(), card, {})
    return directory


def loaded(directory: Path):
    """The artifact's module as lmaas loads it (trusting the tests' own factories), to compare the
    server's answers with."""
    module, card = load(directory, artifact_code=ArtifactCodePolicy(trust_all=True))
    return module, card
