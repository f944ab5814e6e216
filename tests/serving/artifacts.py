"""Small artifacts for the serving tests, written with the real `save_artifact`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from lmaas_api import contract
from lmaas_api.spec import ArtifactCodePolicy
from lmaas_worker.artifacts import load_model, save_artifact
from lmaas_worker.data import digits, shakespeare
from lmaas_worker.models import rebuild_model


def _card(model: dict[str, Any], task: str, **fields: Any) -> dict[str, Any]:
    return {"format": contract.ARTIFACT_FORMAT, "model": model, "task": task, "dtype": "float32",
            "quantization": None, "producer": {"kind": "TrainJob", "name": "serving-tests"}, **fields}


def _digits_card(model: dict[str, Any]) -> dict[str, Any]:
    return _card(model, "classification", input={"shape": [64], "dtype": "float32"}, numClasses=10,
                 classLabels=[str(d) for d in range(10)], vocab=None)


def digits_mlp(directory: Path, epochs: int = 3) -> Path:
    """The builtin mlp trained briefly on digits (about 90% accurate): predictions differ by input."""
    torch.manual_seed(0)
    bundle = digits.load(seed=0)
    x, y = bundle.train.tensors
    definition = {"builtin": "mlp", "factory": None, "args": {"in_features": 64, "num_classes": 10}}
    module = rebuild_model(definition)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(module(x[batch]), y[batch]).backward()
            optimizer.step()
    save_artifact(directory, module.state_dict(), _digits_card(definition), {"epochs": epochs})
    return directory


def factory_mlp(directory: Path, factory: str, **args: Any) -> Path:
    """An untrained digits-shaped classifier built by a test factory (see tests.serving.models); its
    servers need `--trust-artifact-code`."""
    definition = {"builtin": None, "factory": f"tests.serving.models:{factory}",
                  "args": {"in_features": 64, "num_classes": 10, **args}}
    quick = {k: v for k, v in definition["args"].items() if k not in ("load_delay", "forward_delay")}
    from lmaas_worker.models.mlp import MLP

    torch.manual_seed(1)
    save_artifact(directory, MLP(hidden=(32,), **quick).state_dict(), _digits_card(definition), {})
    return directory


def char_gpt(directory: Path, context: int = 16) -> Path:
    """A tiny untrained char-gpt over the shakespeare vocabulary."""
    torch.manual_seed(0)
    vocab = sorted(set(shakespeare.text()))
    definition = {"builtin": "char-gpt", "factory": None,
                  "args": {"vocab_size": len(vocab), "context": context, "layers": 1, "heads": 2, "embedding": 16}}
    module = rebuild_model(definition)
    card = _card(definition, "language-modeling", input={"shape": [context], "dtype": "int64"}, numClasses=None,
                 classLabels=None, vocab=vocab)
    save_artifact(directory, module.state_dict(), card, {})
    return directory


def loaded(directory: Path):
    """The artifact's module as lmaas loads it (trusting the tests' own factories), to compare the
    server's answers with."""
    module, card = load_model(directory, artifact_code=ArtifactCodePolicy(trust_all=True))
    return module, card
