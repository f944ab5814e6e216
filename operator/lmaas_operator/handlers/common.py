"""What every kind's handlers share."""
from __future__ import annotations

import datetime
from typing import Any, TypeVar

import kopf
import pydantic

from ..api.crds import GROUP, VERSION
from ..api.spec import ApiModel
from ..resource import CustomResource

SpecT = TypeVar("SpecT", bound=ApiModel)

__all__ = ["GROUP", "VERSION", "parse_resource", "parse_spec", "plain", "record_observed_generation", "utcnow"]


def parse_spec(spec_type: type[SpecT], body: kopf.Body) -> SpecT:
    """The typed spec; a spec the CRD let through but the types refuse is a permanent error."""
    try:
        return spec_type.parse(plain(body.get("spec")))
    except pydantic.ValidationError as error:
        raise kopf.PermanentError(f"{body['kind']} spec does not match {GROUP}/{VERSION}: {error}") from error


def parse_resource(body: kopf.Body) -> CustomResource:
    """Identity and typed spec of a stored CR; see parse_spec for what a bad spec does."""
    try:
        return CustomResource.from_body(plain(body))
    except pydantic.ValidationError as error:
        raise kopf.PermanentError(f"{body['kind']} spec does not match {GROUP}/{VERSION}: {error}") from error


def utcnow() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_observed_generation(body: kopf.Body, patch: kopf.Patch) -> None:
    patch.setdefault("status", {})["observedGeneration"] = body["metadata"].get("generation")


def plain(value: Any) -> Any:
    """kopf's views of the body → plain dicts and lists, as pydantic expects."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
