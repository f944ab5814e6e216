"""The compression worker's configuration: the whole CompressJob, read from --config and validated
as the API server would (`lmaas_api.resource.read_resource`), the input artifact and the output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lmaas_api import contract
from lmaas_api.errors import ConfigError
from lmaas_api.resource import read_resource
from lmaas_api.spec import CompressJobSpec

from ..job_config import JobConfig, output_uri_from, writable_dir

OUTPUT_FIELD = f"--output-dir (${contract.OUTPUT_DIR_ENV})"
INPUT_FIELD = f"--input-dir (${contract.INPUT_DIR_ENV})"


@dataclass(frozen=True)
class CompressConfig(JobConfig[CompressJobSpec]):
    input_dir: Path


def load_compress_config(
    config_path: str | os.PathLike | None,
    input_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike | None,
    environ: dict[str, str] | None = None,
) -> CompressConfig:
    resource = read_resource(config_path, "CompressJob")
    if not input_dir:
        raise ConfigError(INPUT_FIELD, "no input artifact directory given")
    if not Path(input_dir).is_dir():
        raise ConfigError(INPUT_FIELD, f"{input_dir} is not a directory")
    out = writable_dir(output_dir, OUTPUT_FIELD)
    return CompressConfig(
        resource=resource, output_dir=out, output_uri=output_uri_from(environ), input_dir=Path(input_dir)
    )
