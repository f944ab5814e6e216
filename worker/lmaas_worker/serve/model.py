"""The served model, KServe-style: `load()`, then `predict()`; `ready` once loaded and warmed up.

A `Model` owns the torch module of one artifact (read with `lmaas_worker.artifacts.load`,
which never unpickles, and imports a factory that the card names only as the ModelService's
`trustArtifactCode` allows) and says, as typed tensors, what it takes and gives. `predict` takes a
list of per-request arrays, runs ONE forward pass per group of same-shaped rows and splits the
outputs back per request: that is what the batcher calls.

Two kinds, by the artifact's task:

- classification: input `input` FP32 [-1, *input shape] (FP16 and FP64 are converted);
  outputs `probabilities` FP32 [-1, classes] (softmax of the logits) and `class` INT64 [-1].
  `/predict` and V1 instances are arrays of the input shape; predictions are class indices.
- language-modeling (a character model): input `input_ids` INT64 [-1, -1], token ids of 1 to
  `context` tokens (INT8..INT32 and UINT8..UINT32 are converted); outputs `logits` FP32
  [-1, vocab] and `next_token` INT64 [-1], for the token after the last one. `/predict` and V1
  instances are text (a string, every character in the vocabulary) or a list of token ids;
  predictions are the most likely next character. Rows of different lengths are never padded
  together: each length gets its own forward pass, so no assumption about the model is needed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmaas_api.card import ModelCard, read_card
from lmaas_api.errors import ConfigError
from lmaas_api.spec import ArtifactCodePolicy

from .. import artifacts
from . import explain as explaining
from .errors import ClientError, bad_request
from .tensors import TensorSpec, conforms, json_to_array

log = logging.getLogger(__name__)

EXPLAIN_MAX_STEPS = 512
EXPLAIN_MAX_INSTANCES = 64


class Model:
    """One artifact, loaded once; `predict` is called from one model thread at a time."""

    task = ""
    platform = "pytorch_torch"

    def __init__(
        self, name: str, model_dir: Path, card: ModelCard, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
    ):
        self.name = name
        self.model_dir = Path(model_dir)
        self.card = card
        self.artifact_code = artifact_code
        self.module: torch.nn.Module | None = None
        self.ready = False
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []

    # --- lifecycle -----------------------------------------------------------------------

    def load(self) -> None:
        """Load the module in eval mode and without gradients (serving never trains; explain
        differentiates its inputs only)."""
        self.module, self.card = artifacts.load(self.model_dir, artifact_code=self.artifact_code)

    def warm_up(self, max_batch_size: int) -> float:
        """Run a forward pass at batch size 1 and at the largest batch; return the seconds it took.

        The server sets `ready` afterwards (after saying so in the log)."""
        started = time.perf_counter()
        example = self.example_row()
        self.predict([example])
        if max_batch_size > 1:
            self.predict([np.repeat(example, max_batch_size, axis=0)])
        return time.perf_counter() - started

    # --- the data plane's call -------------------------------------------------------------

    def predict(self, batch: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Outputs for each request's rows; same-shaped rows share one forward pass."""
        results: list[dict[str, np.ndarray] | None] = [None] * len(batch)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, rows in enumerate(batch):
            groups.setdefault(rows.shape[1:], []).append(index)
        with torch.inference_mode():
            for members in groups.values():
                stacked = batch[members[0]] if len(members) == 1 else np.concatenate([batch[i] for i in members])
                outputs = self.forward(torch.from_numpy(stacked))
                start = 0
                for i in members:
                    end = start + len(batch[i])
                    results[i] = {key: value[start:end] for key, value in outputs.items()}
                    start = end
        return results  # type: ignore[return-value]

    def forward(self, inputs: torch.Tensor) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # --- what the protocol adapters use -------------------------------------------------------

    def example_row(self) -> np.ndarray:
        raise NotImplementedError

    def check_input(self, name: str, array: np.ndarray, datatype: str, where: str) -> np.ndarray:
        """A decoded V2 input tensor as the model's input array; 400 naming what does not fit."""
        spec = self.inputs[0]
        if name != spec.name:
            raise bad_request(f"{where}: unknown input {name!r}; this model's input is {spec.name!r}")
        if datatype != spec.datatype and datatype not in spec.accepts:
            accepted = ", ".join((spec.datatype, *spec.accepts))
            raise bad_request(
                f"{where}: input {name!r} has datatype {datatype}; the model expects {spec.datatype} "
                f"(accepted: {accepted})"
            )
        if not conforms(array.shape, spec.shape):
            raise bad_request(
                f"{where}: input {name!r} has shape {list(array.shape)}; the model expects "
                f"{list(spec.shape)} (-1: any size)"
            )
        if array.shape[0] == 0:
            raise bad_request(f"{where}: input {name!r} has no rows (shape {list(array.shape)})")
        return self.check_rows(array.astype(spec.dtype, copy=False), where)

    def check_rows(self, array: np.ndarray, where: str) -> np.ndarray:
        return array

    def instances_to_rows(self, instances: Any, where: str) -> list[np.ndarray]:
        """`/predict` inputs or V1 instances as arrays of same-shaped rows, in order."""
        raise NotImplementedError

    def predictions(self, outputs: dict[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
        """(predictions, extra response fields) of `/predict` and V1 for these outputs."""
        raise NotImplementedError

    def explain(self, rows: list[np.ndarray], options: dict[str, Any], where: str) -> dict[str, Any]:
        """Attributions for the rows of one request (see `lmaas_worker.serve.explain`)."""
        raise ClientError(
            400,
            f"explain is not supported for {self.task} models: attributions are computed "
            f"over the float input features of a classification model",
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": ["1"],
            "platform": self.platform,
            "inputs": [spec.metadata() for spec in self.inputs],
            "outputs": [spec.metadata() for spec in self.outputs],
        }

    def info(self) -> dict[str, str]:
        """Labels of the model-info metric."""
        producer = self.card.producer
        return {
            "model": self.name,
            "task": self.task,
            "path": str(self.model_dir),
            "producer": "/".join(value for value in (producer.kind, producer.name) if value) if producer else "",
            "quantization": self.card.quantization.scheme if self.card.quantization else "none",
            "dtype": self.card.dtype,
        }


class ClassifierModel(Model):
    task = "classification"

    def __init__(
        self, name: str, model_dir: Path, card: ModelCard, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
    ):
        super().__init__(name, model_dir, card, artifact_code)
        shape = card.input.shape if card.input else None
        if not (shape and all(d > 0 for d in shape)):
            raise ValueError(f"{model_dir}: model.json has no usable input shape ({shape!r})")
        self.input_shape = tuple(shape)
        self.num_classes = card.num_classes or (len(card.class_labels) if card.class_labels else -1)
        self.inputs = [TensorSpec("input", "FP32", (-1, *self.input_shape), accepts=("FP16", "FP64"))]
        self.outputs = [
            TensorSpec("probabilities", "FP32", (-1, self.num_classes)),
            TensorSpec("class", "INT64", (-1,)),
        ]

    def forward(self, inputs: torch.Tensor) -> dict[str, np.ndarray]:
        logits = self.module(inputs)
        return {"probabilities": torch.softmax(logits.float(), dim=1).numpy(), "class": logits.argmax(dim=1).numpy()}

    def example_row(self) -> np.ndarray:
        return np.zeros((1, *self.input_shape), np.float32)

    def instances_to_rows(self, instances: Any, where: str) -> list[np.ndarray]:
        if instances == []:
            raise bad_request(f"{where}: the list of instances is empty")
        array = json_to_array(instances, "FP32", where)
        expected = (-1, *self.input_shape)
        if not conforms(array.shape, expected):
            raise bad_request(
                f"{where}: expected a list of instances, each of shape {list(self.input_shape)} "
                f"(an array of shape [n, {', '.join(map(str, self.input_shape))}]), got an array of "
                f"shape {list(array.shape)}"
            )
        return [array]

    def predictions(self, outputs: dict[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
        return outputs["class"], {"probabilities": outputs["probabilities"]}

    def explain(self, rows: list[np.ndarray], options: dict[str, Any], where: str) -> dict[str, Any]:
        rows = np.concatenate(rows)
        method = options.get("method", "integrated_gradients")
        if method not in explaining.METHODS:
            raise bad_request(f"{where}.method: {method!r} is not one of {', '.join(explaining.METHODS)}")
        steps = options.get("steps", 64)
        if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= EXPLAIN_MAX_STEPS):
            raise bad_request(f"{where}.steps: must be an integer from 1 to {EXPLAIN_MAX_STEPS}, got {steps!r}")
        if len(rows) > EXPLAIN_MAX_INSTANCES:
            raise bad_request(
                f"{where}.instances: at most {EXPLAIN_MAX_INSTANCES} instances per explain request, got {len(rows)}"
            )
        n = len(rows)
        targets = None
        if options.get("target") is not None:
            target = options["target"]
            values = target if isinstance(target, list) else [target] * n
            if (
                len(values) != n
                or not all(isinstance(t, int) and not isinstance(t, bool) for t in values)
                or (self.num_classes > 0 and not all(0 <= t < self.num_classes for t in values))
            ):
                raise bad_request(
                    f"{where}.target: must be a class index from 0 to {self.num_classes - 1}, or a "
                    f"list of {n} of them, got {target!r}"
                )
            targets = torch.tensor(values, dtype=torch.int64)
        baseline = None
        if options.get("baseline") is not None:
            value = options["baseline"]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                baseline = torch.full(self.input_shape, float(value))
            else:
                array = json_to_array(value, "FP32", f"{where}.baseline")
                if array.shape != self.input_shape:
                    raise bad_request(
                        f"{where}.baseline: must be a number or one instance of shape "
                        f"{list(self.input_shape)}, got shape {list(array.shape)}"
                    )
                baseline = torch.from_numpy(array)
        result = explaining.explain(self.module, torch.from_numpy(rows), targets, baseline, method, steps)
        explanations = [
            {
                "target": int(result.targets[i]),
                "attributions": result.attributions[i].numpy(),
                "score": float(result.scores[i]),
                "baseline_score": float(result.baseline_scores[i]),
                "delta": float(result.delta[i]),
            }
            for i in range(n)
        ]
        return {
            "method": method,
            "output": "logit",
            "steps": steps if method == "integrated_gradients" else 1,
            "explanations": explanations,
        }


class LanguageModel(Model):
    task = "language-modeling"

    def __init__(
        self, name: str, model_dir: Path, card: ModelCard, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
    ):
        super().__init__(name, model_dir, card, artifact_code)
        vocab = card.vocab
        if not vocab:
            raise ValueError(f"{model_dir}: model.json of a language model has no vocab")
        self.vocab = vocab
        self.index = {token: i for i, token in enumerate(vocab)}
        shape = (card.input.shape if card.input else None) or []
        self.context = int((card.model.args or {}).get("context") or (shape[-1] if shape else 0)) or None
        self.inputs = [
            TensorSpec("input_ids", "INT64", (-1, -1), accepts=("INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"))
        ]
        self.outputs = [TensorSpec("logits", "FP32", (-1, len(vocab))), TensorSpec("next_token", "INT64", (-1,))]

    def forward(self, inputs: torch.Tensor) -> dict[str, np.ndarray]:
        logits = self.module(inputs)[:, -1, :].float()
        return {"logits": logits.numpy(), "next_token": logits.argmax(dim=1).numpy()}

    def example_row(self) -> np.ndarray:
        return np.zeros((1, self.context or 1), np.int64)

    def check_rows(self, array: np.ndarray, where: str) -> np.ndarray:
        length = array.shape[1]
        if length == 0:
            raise bad_request(f"{where}: a sequence needs at least one token")
        if self.context and length > self.context:
            raise bad_request(
                f"{where}: a sequence of {length} tokens is longer than the model's context of {self.context}"
            )
        if array.size and (array.min() < 0 or array.max() >= len(self.vocab)):
            bad = array.min() if array.min() < 0 else array.max()
            raise bad_request(f"{where}: token id {bad} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return array

    def instances_to_rows(self, instances: Any, where: str) -> list[np.ndarray]:
        if not isinstance(instances, list):
            raise bad_request(
                f"{where}: expected a list of instances (texts, or lists of token ids), got {type(instances).__name__}"
            )
        if not instances:
            raise bad_request(f"{where}: the list of instances is empty")
        rows = []
        for i, instance in enumerate(instances):
            at = f"{where}[{i}]"
            if isinstance(instance, str):
                unknown = next((c for c in instance if c not in self.index), None)
                if unknown is not None:
                    raise bad_request(f"{at}: character {unknown!r} is not in the model's vocabulary")
                ids = np.fromiter((self.index[c] for c in instance), np.int64, len(instance)).reshape(1, -1)
            else:
                ids = json_to_array(instance, "INT64", at)
                if ids.ndim != 1:
                    raise bad_request(
                        f"{at}: an instance is a text or a flat list of token ids, got shape {list(ids.shape)}"
                    )
                ids = ids.reshape(1, -1)
            rows.append(self.check_rows(ids, at))
        return rows

    def predictions(self, outputs: dict[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
        ids = outputs["next_token"]
        return [self.vocab[i] for i in ids.tolist()], {"next_token_ids": ids}


def open_model(
    model_dir: Path, configured_name: str | None, artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()
) -> Model:
    """The model an artifact describes, not yet loaded (reading the card is quick; loading is not)."""
    from .config import resolve_model_name

    card = read_card(model_dir)
    if card.layout != "lmaas":
        raise ConfigError(
            "spec.model", f"{model_dir} is a {card.layout} folder, which the lmaas runtime does not serve yet"
        )
    name = resolve_model_name(configured_name, card, Path(model_dir))
    kinds = {ClassifierModel.task: ClassifierModel, LanguageModel.task: LanguageModel}
    return kinds[card.task](name, Path(model_dir), card, artifact_code)
