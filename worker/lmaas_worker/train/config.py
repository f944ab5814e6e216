"""The training worker's configuration: the whole TrainJob, read from --config and validated as the
API server would (`lmaas_api.resource.read_resource`), the output directory, the folder of a
Hugging Face model from `spec.model.hf.uri` (mounted by the operator, named by $LMAAS_INPUT_DIR),
the file of `spec.dataset.uri` ($LMAAS_DATASET_PATH) and the node's data cache ($LMAAS_DATA_CACHE)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
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
    dataset_path: Path | None = None
    """The file of `spec.dataset.uri`; None when the data is a builtin or a factory's."""
    data_cache_dir: Path | None = None
    """Where this node keeps tokenized data sets (see `data.cache`): $LMAAS_DATA_CACHE, or
    `contract.DATA_CACHE_SUBDIR` in the temporary directory."""

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
    env = os.environ if environ is None else environ
    out = writable_dir(output_dir, f"--output-dir (${contract.OUTPUT_DIR_ENV})")
    model_dir = dataset_path = None
    if spec.model.hf is not None and spec.model.hf.uri is not None:
        model_dir = _mounted(env, contract.INPUT_DIR_ENV, "spec.model.hf.uri", spec.model.hf.uri)
    if spec.dataset.uri is not None:
        dataset_path = _mounted(env, contract.DATASET_PATH_ENV, "spec.dataset.uri", spec.dataset.uri)
    return TrainConfig(
        resource=resource,
        output_dir=out,
        output_uri=output_uri_from(environ),
        model_dir=model_dir,
        dataset_path=dataset_path,
        data_cache_dir=Path(
            env.get(contract.DATA_CACHE_ENV) or Path(tempfile.gettempdir()) / contract.DATA_CACHE_SUBDIR
        ),
    )


def _mounted(env: Mapping[str, str], variable: str, field: str, uri: str) -> Path:
    """Where the operator mounted `uri`, as `variable` says."""
    path = env.get(variable)
    if not path:
        raise ConfigError(field, f"${variable} does not say where {uri} is mounted")
    return Path(path)
