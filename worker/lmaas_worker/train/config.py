"""The training worker's configuration: the whole TrainJob, read from --config and validated as the
API server would (`lmaas_api.resource.read_resource`), the output directory, and the folder of a
Hugging Face model from `spec.model.hf.uri` (mounted by the operator, named by $LMAAS_INPUT_DIR)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lmaas_api import contract
from lmaas_api.errors import ConfigError
from lmaas_api.resource import read_resource
from lmaas_api.spec import TrainJobSpec

from ..job_config import JobConfig, output_uri_from, writable_dir


@dataclass(frozen=True)
class TrainConfig(JobConfig[TrainJobSpec]):
    model_dir: Path | None = None
    """The folder of `spec.model.hf.uri`; None when the model is not read from a folder."""

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / contract.CHECKPOINT_SUBDIR


def load_train_config(
    config_path: str | os.PathLike | None, output_dir: str | os.PathLike | None, environ: dict[str, str] | None = None
) -> TrainConfig:
    resource = read_resource(config_path, "TrainJob")
    spec = resource.spec
    if spec.model is None:
        if spec.command:
            raise ConfigError(
                "spec.command",
                "this TrainJob runs a custom command, which the operator starts "
                "directly; lmaas train trains spec.model and there is none",
            )
        raise ConfigError("spec.model", "lmaas train needs a model to train")
    if spec.dataset is None:
        raise ConfigError("spec.dataset", "lmaas train needs a dataset to train on")
    out = writable_dir(output_dir, f"--output-dir (${contract.OUTPUT_DIR_ENV})")
    model_dir = None
    if spec.model.hf is not None and spec.model.hf.uri is not None:
        folder = (os.environ if environ is None else environ).get(contract.INPUT_DIR_ENV)
        if not folder:
            raise ConfigError(
                "spec.model.hf.uri", f"${contract.INPUT_DIR_ENV} does not say where {spec.model.hf.uri} is mounted"
            )
        model_dir = Path(folder)
    return TrainConfig(resource=resource, output_dir=out, output_uri=output_uri_from(environ), model_dir=model_dir)
