"""Reading the custom resource a worker runs from its config file (JSON or YAML), and checking
the directory it writes to."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from lmaas_operator.api import contract
from lmaas_operator.api.crds import API_VERSION
from lmaas_operator.api.spec import ApiModel
from lmaas_operator.api.validation import InvalidResource, validate

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

SpecT = TypeVar("SpecT", bound=ApiModel)


def read_validated(config_path: str | os.PathLike | None, kind: str,
                   spec_type: type[SpecT]) -> tuple[dict[str, Any], SpecT]:
    """(the resource with its defaults, its typed spec), validated as the API server would (CRD
    schema, defaults and CEL rules), so a hand-written file gets the messages `kubectl apply` gives;
    a ConfigError names the first field at fault."""
    document = read_resource(config_path, kind)
    try:
        document = validate({"apiVersion": API_VERSION, "kind": kind, **document})
    except InvalidResource as error:
        if not error.errors:
            raise ConfigError("spec", str(error)) from error
        first, *others = error.errors
        raise ConfigError(first.path, "; ".join([first.message, *(str(e) for e in others)])) from error
    try:
        spec = spec_type.parse(document["spec"])
    except ValidationError as error:
        first_error = error.errors()[0]
        raise ConfigError("spec." + ".".join(str(p) for p in first_error["loc"]), str(error)) from error
    return document, spec


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
