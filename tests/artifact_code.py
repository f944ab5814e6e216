"""Artifacts whose model card names code, for the tests of `trustArtifactCode`.

`hostile` names `subprocess:getoutput` as its model (`hostile_dataset` as its data set) with a shell command that creates a marker file: the file
existing is the proof that the card ran code. `user_factory` names a legitimate factory of the
worker tests. Both are digits classifiers with the card a TrainJob writes (its data set
included), so a serving or compression worker gets as far as loading the model.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from lmaas_api import contract
from lmaas_api.card import ModelCard, RecordedDataset
from lmaas_api.spec import ModelDefinition
from lmaas_worker.artifacts import dense
from lmaas_worker.models.mlp import MLP

HOSTILE_FACTORY = "subprocess:getoutput"
USER_FACTORY = "tests.worker.factories:slow_mlp"
REFUSAL = f'model.json: model.factory "{HOSTILE_FACTORY}" is not a factory this resource names; not imported'
HOW_TO_ALLOW = "spec.trustArtifactCode: true"


def digits_card(model: ModelDefinition) -> ModelCard:
    return ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "model": model,
            "task": "classification",
            "input": {"shape": [64], "dtype": "float32"},
            "numClasses": 10,
            "classLabels": [str(d) for d in range(10)],
            "vocab": None,
            "dtype": "float32",
            "quantization": None,
            "dataset": {"builtin": "digits", "validationFraction": 0.2, "seed": 0},
            "producer": {"kind": "TrainJob", "name": "someone-else"},
        }
    )


def hostile(directory: Path, marker: Path) -> Path:
    """An artifact whose card runs `touch MARKER` when its factory is called."""
    model = ModelDefinition(factory=HOSTILE_FACTORY, args={"cmd": f"touch {marker}"})
    dense.save(directory, nn.Linear(64, 10).state_dict(), digits_card(model), {})
    return directory


def hostile_dataset(directory: Path, marker: Path) -> Path:
    """A builtin model whose card records a data set made by `subprocess:getoutput`, with a
    command that creates the marker: a CompressJob without spec.dataset would build it."""
    args = {"in_features": 64, "num_classes": 10, "hidden": [32]}
    card = digits_card(ModelDefinition(builtin="mlp", args=args)).model_copy(
        update={"dataset": RecordedDataset(factory=HOSTILE_FACTORY, args={"cmd": f"touch {marker}"}, seed=0)}
    )
    dense.save(directory, MLP(**args).state_dict(), card, {})
    return directory


def user_factory(directory: Path) -> Path:
    """An artifact of the user factory `tests.worker.factories:slow_mlp` (not slowed down)."""
    args = {"in_features": 64, "num_classes": 10, "hidden": [32]}
    model = ModelDefinition(factory=USER_FACTORY, args={**args, "delay": 0.0})
    dense.save(directory, MLP(**args).state_dict(), digits_card(model), {})
    return directory


def builtin(directory: Path) -> Path:
    """An artifact of the builtin mlp, of the same shape."""
    args = {"in_features": 64, "num_classes": 10, "hidden": [32]}
    dense.save(directory, MLP(**args).state_dict(), digits_card(ModelDefinition(builtin="mlp", args=args)), {})
    return directory
