"""The model card, `model.json`: what an artifact holds and how to rebuild its module.

Every role reads a card through `read_card(directory)`: the worker when it loads or compresses an
artifact, `lmaas serve` when it names and describes its model, `lmaas run` when it shows how to
call a served model. A card that is not valid JSON or does not fit `ModelCard` is a ConfigError
naming the file and each field at fault. The worker writes a card with `ModelCard.to_json()`.

On disk the keys are camelCase (`numClasses`, `classLabels`, `createdAt`), as in the API; every
field is written, null where it does not apply, so a reader needs no default of its own. Unknown
keys are refused, as in the CRDs, except in `input`, which a user's data set may describe freely.

`layout` says how the rest of the directory holds the model: "lmaas", `model.safetensors` holding
the state of the module that `model` rebuilds (dense, or compressed as `compression` says); or
"huggingface", a Hugging Face folder (`config.json`, safetensors weights, tokenizer files,
`generation_config.json`) that transformers' `from_pretrained` loads, `model` recording the
`spec.model.hf` it was trained from.

This module imports neither kopf nor torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from . import contract
from .errors import ConfigError
from .spec import ApiModel, DatasetDefinition, ModelDefinition, TrainJobModel

TaskName = Literal["classification", "language-modeling"]
Scheme = Literal["int8", "int4"]
Layout = Literal["lmaas", "huggingface"]
COMPRESSED_FORMAT: Final = "lmaas.compressed/v1"
"""The `format` of a card's `compression` section: the layout of `model.safetensors` it describes."""


def _exactly(expected: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value != expected:
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": repr(expected)})
        return value

    return check


ArtifactFormat = Annotated[str, AfterValidator(_exactly(contract.ARTIFACT_FORMAT))]
CompressedFormat = Annotated[str, AfterValidator(_exactly(COMPRESSED_FORMAT))]


class Producer(ApiModel):
    """The resource that wrote the artifact (its identity fields that were known)."""

    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None


class InputSpec(ApiModel):
    """One input of the model: shape and dtype, and whatever else the data set says of it
    (e.g. its layout and preprocessing)."""

    model_config = ConfigDict(extra="allow")

    shape: list[int] | None = None
    dtype: str | None = None


class RecordedDataset(DatasetDefinition):
    """The training data set, so that a consumer can build the same held-out split."""

    seed: int | None = None
    """The split seed of the training run: held-out samples built with it were never trained on."""


class LayerCompute(ApiModel):
    """How one quantized weight layer computes once loaded (`int8_backend.describe_layer`)."""

    kind: str
    stored: Scheme
    compute: Literal["int8", "float32"]
    kernel: str
    activations: str | None = None


class Quantization(ApiModel):
    """Symmetric weight quantization: int8 per output channel, or int4 per group of `groupSize`."""

    scheme: Scheme
    group_size: int | None = Field(default=None, gt=0)
    symmetric: bool | None = None
    granularity: Literal["per-channel", "per-group"] | None = None
    layers: dict[str, LayerCompute] | None = None


class Sparsity(ApiModel):
    """The last pruning applied to the model."""

    structure: Literal["unstructured", "structured"]
    scope: Literal["global", "layer"]
    target: float
    iterations: int
    format: Literal["bitmask", "smaller layers"]


class StoredTensor(ApiModel):
    """How one layer weight is encoded in the compressed layout of `model.safetensors`."""

    shape: list[int]
    quantization: Scheme | None = None
    group_size: int | None = Field(default=None, gt=0)
    layout: Literal["dense", "bitmask"]


class LayerSize(ApiModel):
    """The input and output size of a layer that structured pruning shrank."""

    inputs: int = Field(alias="in")
    outputs: int = Field(alias="out")


class Compression(ApiModel):
    """What the compressed layout stores: the encoded weights, and the layers built smaller."""

    format: CompressedFormat
    tensors: dict[str, StoredTensor] = {}
    sizes: dict[str, LayerSize] = {}


class Source(ApiModel):
    """The artifact a compressed one was made from."""

    producer: Producer | None = None
    model: ModelDefinition | None = None


class ModelCard(ApiModel):
    format: ArtifactFormat
    layout: Layout = "lmaas"
    """How the directory holds the model (see the module's doc); cards without one are "lmaas"."""
    model: ModelDefinition | TrainJobModel
    """How to rebuild the module: a builtin or a factory, with the keyword arguments used; or the
    Hugging Face model it was trained from."""
    task: TaskName
    input: InputSpec | None = None
    num_classes: int | None = None
    class_labels: list[str] | None = None
    vocab: list[str] | None = None
    dtype: str = "float32"
    quantization: Quantization | None = None
    parameters: int | None = None
    dataset: RecordedDataset | None = None
    producer: Producer | None = None
    created_at: str | None = None
    framework: dict[str, str] | None = None
    sparsity: Sparsity | None = None
    compression: Compression | None = None
    """Set when `model.safetensors` holds the compressed layout; null for plain float32 weights."""
    source: Source | None = None
    name: str | None = None
    """The name a server gives the model (hand-written cards; lmaas names it after its producer)."""

    def to_json(self) -> str:
        """The card as `model.json` holds it."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, allow_nan=False) + "\n"


def read_card(directory: str | os.PathLike[str]) -> ModelCard:
    """The card of the artifact in `directory`.

    Raises FileNotFoundError when there is no card, and a ConfigError naming the file and every
    field at fault when it is not a valid lmaas model card.
    """
    path = Path(directory) / contract.MODEL_CARD_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not an lmaas artifact (no {contract.MODEL_CARD_FILE})") from None
    try:
        return ModelCard.model_validate_json(text)
    except ValidationError as error:
        raise ConfigError(str(path), "; ".join(_describe(e) for e in error.errors())) from error


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    value = error.get("input")
    if where and error["type"] != "missing" and isinstance(value, (str, int, float, bool)):
        message += f" (got {json.dumps(value)})"
    return f"{where}: {message}" if where else message
