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

from lmaas_operator.api import contract
from lmaas_operator.api.spec import TrainJobSpec

from ..errors import ConfigError
from ..resource_file import read_validated, writable_dir


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
        """Who made the artifact. A pod's config document has no generation (it would change the pod
        template with every edit); a hand-written one may."""
        producer = {"kind": self.kind, "name": self.name, "namespace": self.namespace, "uid": self.uid,
                    "generation": self.generation}
        return {key: value for key, value in producer.items() if value is not None}

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
    document, spec = read_validated(config_path, "TrainJob", TrainJobSpec)
    if spec.model is None:
        if spec.command:
            raise ConfigError("spec.command", "this TrainJob runs a custom command, which the operator starts "
                                              "directly; lmaas train trains spec.model and there is none")
        raise ConfigError("spec.model", "lmaas train needs a model to train")
    if spec.dataset is None:
        raise ConfigError("spec.dataset", "lmaas train needs a dataset to train on")
    out = writable_dir(output_dir, f"--output-dir (${contract.OUTPUT_DIR_ENV})")
    metadata = document.get("metadata") or {}
    return TrainConfig(
        kind="TrainJob", name=metadata.get("name", ""), namespace=metadata.get("namespace"),
        uid=metadata.get("uid"), generation=metadata.get("generation"), spec=spec,
        output_dir=out, output_uri=env.get(contract.OUTPUT_URI_ENV) or None,
    )
