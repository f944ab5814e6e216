"""What every kind's handlers share."""
from __future__ import annotations

from typing import Any, TypeVar

import kopf
import pydantic

from ..api.crds import GROUP, VERSION
from ..api.spec import ApiModel

SpecT = TypeVar("SpecT", bound=ApiModel)

__all__ = ["GROUP", "VERSION", "parse_spec", "record_observed_generation"]


def parse_spec(spec_type: type[SpecT], body: kopf.Body) -> SpecT:
    """The typed spec; a spec the CRD let through but the types refuse is a permanent error."""
    try:
        return spec_type.parse(_plain(body.get("spec")))
    except pydantic.ValidationError as error:
        raise kopf.PermanentError(f"{body['kind']} spec does not match {GROUP}/{VERSION}: {error}") from error


def record_observed_generation(body: kopf.Body, patch: kopf.Patch) -> None:
    patch.setdefault("status", {})["observedGeneration"] = body["metadata"].get("generation")


def _plain(value: Any) -> Any:
    """kopf's views of the body → plain dicts and lists, as pydantic expects."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
