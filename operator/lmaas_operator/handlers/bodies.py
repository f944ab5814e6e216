"""kopf's bodies as the handlers read them: plain data, and the typed resource."""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from lmaas_api.crds import GROUP, VERSION
from lmaas_api.resource import CustomResource


def plain(value: Any) -> Any:
    """kopf's views of the body → plain dicts and lists, as pydantic expects."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def parse_resource(body: kopf.Body | dict[str, Any]) -> CustomResource:
    """Identity and typed spec of a stored CR; a spec the CRD let through but the types refuse is a
    permanent error."""
    try:
        return CustomResource.from_body(plain(body))
    except pydantic.ValidationError as error:
        raise kopf.PermanentError(f"{body['kind']} spec does not match {GROUP}/{VERSION}: {error}") from error
