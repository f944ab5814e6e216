"""A custom resource as the pure builders see it: identity plus typed spec, no API client."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Mapping, TypeVar

from .api.crds import API_VERSION
from .api.spec import SPEC_TYPES, ApiModel

SpecT = TypeVar("SpecT", bound=ApiModel)


@dataclass(frozen=True)
class CustomResource(Generic[SpecT]):
    kind: str
    name: str
    namespace: str
    uid: str
    generation: int
    spec: SpecT

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "CustomResource":
        """Parse a stored object (its spec already defaulted by the API server)."""
        meta = body["metadata"]
        return cls(
            kind=body["kind"],
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=meta.get("generation", 1),
            spec=SPEC_TYPES[body["kind"]].parse(body.get("spec")),
        )

    def owner_reference(self) -> dict[str, Any]:
        """Makes a child garbage-collected with this resource."""
        return {
            "apiVersion": API_VERSION, "kind": self.kind, "name": self.name, "uid": self.uid,
            "controller": True, "blockOwnerDeletion": True,
        }

    def as_document(self, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
        """The resource as the worker reads it from its config file: identity and spec, less the
        spec fields in `leave_out` (those that may change while its pods run, which the worker
        does not read). No generation: the pod template holds this document, and a generation
        that moves with every edit would make the template move with it."""
        spec = {key: value for key, value in self.spec.to_dict().items() if key not in leave_out}
        return {
            "apiVersion": API_VERSION, "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
            "spec": spec,
        }
