"""What a job's worker (train, compress) is given: its custom resource, read and validated from
--config (`lmaas_api.resource.read_resource`), and the directory it writes to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

from lmaas_api import contract
from lmaas_api.errors import ConfigError
from lmaas_api.resource import CustomResource, SpecT


@dataclass(frozen=True)
class JobConfig(Generic[SpecT]):
    resource: CustomResource[SpecT]
    output_dir: Path
    output_uri: str | None
    """pvc://CLAIM/PATH that output_dir is, when the operator says so ($LMAAS_OUTPUT_URI)."""

    @property
    def spec(self) -> SpecT:
        return self.resource.spec

    @property
    def producer(self) -> dict[str, Any]:
        """Who made the artifact (a pod's config document has no generation; a hand-written one may)."""
        return self.resource.producer

    @property
    def artifact_dir(self) -> Path:
        return self.output_dir / contract.ARTIFACT_SUBDIR

    def uri_of(self, relative: str) -> str | None:
        return f"{self.output_uri.rstrip('/')}/{relative}" if self.output_uri else None


def output_uri_from(environ: dict[str, str] | None) -> str | None:
    return (os.environ if environ is None else environ).get(contract.OUTPUT_URI_ENV) or None


def writable_dir(directory: str | os.PathLike | None, field: str) -> Path:
    """`directory`, created if need be, once a file could be written there; else a ConfigError."""
    if not directory:
        raise ConfigError(field, "no output directory given")
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".lmaas-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(field, f"{path} is not a writable directory: {error.strerror or error}") from error
    return path
