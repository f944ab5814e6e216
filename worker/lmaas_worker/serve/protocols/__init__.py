"""Thin protocol adapters over the one data plane: the seed's `/predict`, KServe V1 and the Open
Inference Protocol (V2). Each turns a request body into model inputs, calls the data plane and
shapes its outputs; none knows about HTTP beyond status codes, nor about torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import jsoncodec
from ..batcher import Outputs
from ..errors import bad_request


@dataclass(frozen=True, slots=True)
class Call:
    """What an adapter gets: the model name in the path (if any), the body and the headers."""

    model: str | None = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Reply:
    """What an adapter returns: a JSON-able payload (or raw bytes), a status and extra headers."""

    payload: Any
    status: int = 200
    headers: dict[str, str] | None = None
    content_type: str = "application/json"


def parse_object(body: bytes, what: str = "request body") -> dict[str, Any]:
    """The body as a JSON object; 400 saying why it is not one."""
    if not body:
        raise bad_request(f"the {what} is empty; expected a JSON object")
    try:
        document = jsoncodec.loads(body)
    except (jsoncodec.DecodeError, ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"the {what} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise bad_request(f"the {what} must be a JSON object, got {type(document).__name__}")
    return document


def require(document: dict[str, Any], key: str, hint: str) -> Any:
    if key not in document:
        raise bad_request(f'missing field "{key}": {hint}')
    return document[key]


def join(parts: list[Outputs]) -> Outputs:
    """Outputs of several arrays of rows of one request, as one."""
    if len(parts) == 1:
        return parts[0]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
