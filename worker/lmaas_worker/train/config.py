"""The worker's configuration: the whole TrainJob custom resource, read from --config.

The file is JSON or YAML. It is validated the way the API server validates it (CRD schema,
defaults and CEL rules, via `lmaas_operator.api.validation`), so a hand-written file gets the same
messages as `kubectl apply`, then parsed into the typed `TrainJobSpec`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lmaas_operator.api import contract
from lmaas_operator.api.spec import TrainJobSpec
from lmaas_operator.api.validation import InvalidResource, validate

from ..errors import ConfigError
from ..resource_file import read_resource


@dataclass(frozen=True)
class TrainConfig:
    kind: str
    name: str
    namespace: str | None
    uid: str | None
    generation: int | None
    spec: TrainJobSpec
    output_dir: Path
    output_uri: str | None

    @property
    def producer(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace, "uid": self.uid,
                "generation": self.generation}

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / contract.CHECKPOINT_SUBDIR

    @property
    def artifact_dir(self) -> Path:
        return self.output_dir / contract.ARTIFACT_SUBDIR

    def uri_of(self, relative: str) -> str | None:
        return f"{self.output_uri.rstrip('/')}/{relative}" if self.output_uri else None


def load_train_config(config_path: str | os.PathLike | None, output_dir: str | os.PathLike | None,
                      environ: dict[str, str] | None = None) -> TrainConfig:
    env = os.environ if environ is None else environ
    document = read_resource(config_path, "TrainJob")
    try:
        document = validate({"apiVersion": "lmaas.io/v1alpha1", "kind": "TrainJob", **document})
    except InvalidResource as error:
        if not error.errors:
            raise ConfigError("spec", str(error)) from error
        first, *others = error.errors
        raise ConfigError(first.path, "; ".join([first.message, *(str(e) for e in others)])) from error
    try:
        spec = TrainJobSpec.parse(document["spec"])
    except ValidationError as error:
        first = error.errors()[0]
        field = "spec." + ".".join(str(p) for p in first["loc"])
        raise ConfigError(field, str(error)) from error
    if spec.model is None:
        if spec.command:
            raise ConfigError("spec.command", "this TrainJob runs a custom command, which the operator starts "
                                              "directly; lmaas train trains spec.model and there is none")
        raise ConfigError("spec.model", "lmaas train needs a model to train")
    if spec.dataset is None:
        raise ConfigError("spec.dataset", "lmaas train needs a dataset to train on")
    if not output_dir:
        raise ConfigError(f"--output-dir (${contract.OUTPUT_DIR_ENV})", "no output directory given")
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".lmaas-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"--output-dir (${contract.OUTPUT_DIR_ENV})",
                          f"{out} is not a writable directory: {error.strerror or error}") from error
    metadata = document.get("metadata") or {}
    return TrainConfig(
        kind="TrainJob", name=metadata.get("name", ""), namespace=metadata.get("namespace"),
        uid=metadata.get("uid"), generation=metadata.get("generation"), spec=spec,
        output_dir=out, output_uri=env.get(contract.OUTPUT_URI_ENV) or None,
    )
