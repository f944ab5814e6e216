"""Training data: builtins that need no download, and user factories.

A data factory (`spec.dataset.factory: "pkg.mod:fn"`) is called with `spec.dataset.args` as
keyword arguments, plus the hints `seed`, `validation_fraction` and `context` when the function
names those parameters. It returns either a `DataBundle`, or a pair `(train, validation)` of
map-style datasets (`__len__` and `__getitem__`, each item an `(input, target)` pair of tensors).
From a pair, lmaas reads these optional attributes of the training dataset:

- `task`: "classification" (default; targets are class indices) or "language-modeling"
  (inputs and targets are token-index sequences, targets shifted by one);
- `num_classes`, `class_labels` (a list of names), `vocab` (a list of token strings, index order);
- `input_spec`: a dict for the model card, e.g. {"shape": [64], "dtype": "float32"}; when absent,
  shape and dtype are read from the first sample.

A Hugging Face language model's text is built by `text` instead (split, tokenized once, packed into
blocks), which returns a DataBundle holding the tokenizer (`tokenizer`) that encoded it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from lmaas_api.errors import ConfigError
from lmaas_api.spec import DatasetDefinition

from ..factory import call_builder, import_factory
from . import digits, shakespeare

TASKS = ("classification", "language-modeling")


@dataclass(frozen=True)
class DataBundle:
    train: Dataset
    val: Dataset
    task: str = "classification"
    num_classes: int | None = None
    class_labels: list[str] | None = None
    vocab: list[str] | None = None
    input_spec: dict[str, Any] | None = None
    """Shape and dtype of one input, and how raw inputs were preprocessed (for the model card)."""
    tokenizer: PreTrainedTokenizerBase | None = None
    """The tokenizer that encoded a Hugging Face language model's text (saved with its artifact)."""


BUILTIN_DATASETS = {
    "digits": digits.load,
    "shakespeare": shakespeare.load,
}


def build_datasets(definition: DatasetDefinition, seed: int, context: int | None = None) -> DataBundle:
    """Build the (train, validation) data that `definition` names; problems are ConfigErrors."""
    hints = {"seed": seed, "validation_fraction": definition.validation_fraction, "context": context}
    if definition.builtin:
        function = BUILTIN_DATASETS[definition.builtin]
        bundle, _ = call_builder(function, definition.args, hints, "spec.dataset.args")
    else:
        function = import_factory(definition.factory, "spec.dataset.factory")
        result, _ = call_builder(function, definition.args, hints, "spec.dataset.args")
        bundle = _bundle_from_factory(result, definition.factory)
    return _checked(bundle)


def _bundle_from_factory(result: Any, reference: str) -> DataBundle:
    if isinstance(result, DataBundle):
        return result
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ConfigError(
            "spec.dataset.factory",
            f"{reference} must return (train, validation) datasets or a DataBundle, got {type(result).__name__}",
        )
    train, val = result
    return DataBundle(
        train=train,
        val=val,
        task=getattr(train, "task", "classification"),
        num_classes=getattr(train, "num_classes", None),
        class_labels=getattr(train, "class_labels", None),
        vocab=getattr(train, "vocab", None),
        input_spec=getattr(train, "input_spec", None),
    )


def _checked(bundle: DataBundle) -> DataBundle:
    if bundle.task not in TASKS:
        raise ConfigError("spec.dataset", f"task must be one of {TASKS}, got {bundle.task!r}")
    for name, split in (("training", bundle.train), ("validation", bundle.val)):
        if not (hasattr(split, "__len__") and hasattr(split, "__getitem__")):
            raise ConfigError("spec.dataset", f"the {name} split is not a map-style dataset (__len__, __getitem__)")
        if len(split) == 0:
            raise ConfigError("spec.dataset", f"the {name} split is empty")
    if bundle.input_spec is None:
        sample = bundle.train[0]
        if not (isinstance(sample, (tuple, list)) and len(sample) == 2 and torch.is_tensor(sample[0])):
            raise ConfigError("spec.dataset", "each item must be an (input, target) pair of tensors")
        bundle = replace(
            bundle, input_spec={"shape": list(sample[0].shape), "dtype": str(sample[0].dtype).removeprefix("torch.")}
        )
    if bundle.task == "classification" and bundle.class_labels and bundle.num_classes is None:
        bundle = replace(bundle, num_classes=len(bundle.class_labels))
    return bundle
