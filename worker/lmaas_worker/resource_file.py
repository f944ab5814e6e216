"""Reading the custom resource a worker runs from its config file (JSON or YAML)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from lmaas_operator.api import contract

from .errors import ConfigError


def read_resource(config_path: str | os.PathLike | None, kind: str) -> dict[str, Any]:
    """The whole `kind` resource in the file; ConfigError naming --config when it cannot be."""
    field = f"--config (${contract.CONFIG_ENV})"
    if not config_path:
        raise ConfigError(field, "no configuration file given")
    path = Path(config_path)
    try:
        raw = path.read_text()
    except OSError as error:
        raise ConfigError(field, f"cannot read {path}: {error.strerror or error}") from error
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        try:
            document = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(field, f"{path} is neither JSON nor YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        raise ConfigError(field, f"{path} must hold a whole {kind} (apiVersion, kind, metadata, spec)")
    if document.get("kind", kind) != kind:
        raise ConfigError("kind", f"lmaas {_ROLES[kind]} runs a {kind}, not a {document.get('kind')}")
    return document


_ROLES = {"TrainJob": "train", "CompressJob": "compress", "ModelService": "serve"}
