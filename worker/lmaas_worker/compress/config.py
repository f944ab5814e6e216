"""The compression worker's configuration: the whole CompressJob, the input artifact, the output.

The CompressJob file (JSON or YAML) is validated as the API server would (CRD schema, defaults,
CEL rules) and parsed into `CompressJobSpec`; every problem is a ConfigError naming the field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmaas_operator.api import contract
from lmaas_operator.api.spec import CompressJobSpec

from ..errors import ConfigError
from ..resource_file import read_validated, writable_dir

OUTPUT_FIELD = f"--output-dir (${contract.OUTPUT_DIR_ENV})"
INPUT_FIELD = f"--input-dir (${contract.INPUT_DIR_ENV})"


@dataclass(frozen=True)
class CompressConfig:
    name: str
    namespace: str | None
    uid: str | None
    generation: int | None
    spec: CompressJobSpec
    input_dir: Path
    output_dir: Path
    output_uri: str | None

    @property
    def producer(self) -> dict[str, Any]:
        """Who made the artifact. A pod's config document has no generation (it would change the pod
        template with every edit); a hand-written one may."""
        producer = {"kind": "CompressJob", "name": self.name, "namespace": self.namespace, "uid": self.uid,
                    "generation": self.generation}
        return {key: value for key, value in producer.items() if value is not None}

    @property
    def artifact_dir(self) -> Path:
        return self.output_dir / contract.ARTIFACT_SUBDIR

    def uri_of(self, relative: str) -> str | None:
        return f"{self.output_uri.rstrip('/')}/{relative}" if self.output_uri else None


def load_compress_config(config_path: str | os.PathLike | None, input_dir: str | os.PathLike | None,
                         output_dir: str | os.PathLike | None, environ: dict[str, str] | None = None) -> CompressConfig:
    env = os.environ if environ is None else environ
    document, spec = read_validated(config_path, "CompressJob", CompressJobSpec)
    if not input_dir:
        raise ConfigError(INPUT_FIELD, "no input artifact directory given")
    if not Path(input_dir).is_dir():
        raise ConfigError(INPUT_FIELD, f"{input_dir} is not a directory")
    out = writable_dir(output_dir, OUTPUT_FIELD)
    metadata = document.get("metadata") or {}
    return CompressConfig(
        name=metadata.get("name", ""), namespace=metadata.get("namespace"), uid=metadata.get("uid"),
        generation=metadata.get("generation"), spec=spec, input_dir=Path(input_dir), output_dir=out,
        output_uri=env.get(contract.OUTPUT_URI_ENV) or None,
    )
