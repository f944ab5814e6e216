"""A custom resource as builders and workers see it: identity plus typed spec, no API client.

`CustomResource.from_body` reads a stored object (the operator's view); `read_resource` reads a
resource file and validates it as the API server would (a worker's `--config`, a hand-written file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import ValidationError

from . import contract
from .crds import API_VERSION
from .errors import ConfigError
from .spec import SPEC_TYPES, ApiModel
from .validation import InvalidResource, validate

SpecT = TypeVar("SpecT", bound=ApiModel)

ROLES = {"TrainJob": "train", "CompressJob": "compress", "ModelService": "serve"}
"""The `lmaas` subcommand that runs each kind."""


@dataclass(frozen=True)
class CustomResource(Generic[SpecT]):
    kind: str
    name: str
    namespace: str
    uid: str
    generation: int | None
    """None in a pod's config document, which carries none (see `as_document`)."""
    spec: SpecT

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CustomResource[ApiModel]:
        """Parse a stored object (its spec already defaulted by the API server)."""
        meta = body["metadata"]
        return CustomResource(
            kind=body["kind"],
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=meta.get("generation", 1),
            spec=SPEC_TYPES[body["kind"]].parse(body.get("spec")),
        )

    @property
    def producer(self) -> dict[str, Any]:
        """Who made an artifact, for its model card: the identity fields this resource has."""
        producer = {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "generation": self.generation,
        }
        return {key: value for key, value in producer.items() if value not in (None, "")}

    def owner_reference(self) -> dict[str, Any]:
        """Makes a child garbage-collected with this resource."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def as_document(self, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
        """The resource as the worker reads it from its config file: identity and spec, less the
        spec fields in `leave_out` (those that may change while its pods run, which the worker
        does not read). No generation: the pod template holds this document, and a generation
        that moves with every edit would make the template move with it."""
        spec = {key: value for key, value in self.spec.to_dict().items() if key not in leave_out}
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
            "spec": spec,
        }


CONFIG_FIELD = f"--config (${contract.CONFIG_ENV})"


def read_resource(config_path: str | os.PathLike[str] | None, kind: str) -> CustomResource[Any]:
    """The `kind` resource in a JSON or YAML file, validated as the API server would (CRD schema,
    defaults and CEL rules), so a hand-written file gets the messages `kubectl apply` gives. A
    ConfigError names --config when the file cannot be read, else the first field at fault."""
    document = _read_document(config_path, kind)
    try:
        document = validate({"apiVersion": API_VERSION, "kind": kind, **document})
    except InvalidResource as error:
        if not error.errors:
            raise ConfigError("spec", str(error)) from error
        first, *others = error.errors
        raise ConfigError(first.path, "; ".join([first.message, *(str(e) for e in others)])) from error
    try:
        spec = SPEC_TYPES[kind].parse(document["spec"])
    except ValidationError as error:
        first_error = error.errors()[0]
        raise ConfigError("spec." + ".".join(str(p) for p in first_error["loc"]), str(error)) from error
    metadata = document.get("metadata") or {}
    return CustomResource(
        kind=kind,
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        uid=metadata.get("uid", ""),
        generation=metadata.get("generation"),
        spec=spec,
    )


def _read_document(config_path: str | os.PathLike[str] | None, kind: str) -> dict[str, Any]:
    if not config_path:
        raise ConfigError(CONFIG_FIELD, "no configuration file given")
    path = Path(config_path)
    try:
        raw = path.read_text()
    except OSError as error:
        raise ConfigError(CONFIG_FIELD, f"cannot read {path}: {error.strerror or error}") from error
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        try:
            document = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(CONFIG_FIELD, f"{path} is neither JSON nor YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        raise ConfigError(CONFIG_FIELD, f"{path} must hold a whole {kind} (apiVersion, kind, metadata, spec)")
    if document.get("kind", kind) != kind:
        raise ConfigError("kind", f"lmaas {ROLES[kind]} runs a {kind}, not a {document.get('kind')}")
    return document
