"""Thin protocol adapters over the one data plane: the seed's `/predict`, KServe V1 and the Open
Inference Protocol (V2). Each declares its endpoints (method, path, the types of its request and
response bodies) and turns a validated request into model inputs, calls the data plane and
shapes its outputs; none knows about HTTP beyond status codes, nor about torch.

Request bodies are pydantic models, which validate them. Response bodies are `TypedDict`s: the
adapters build them as dict literals (calling the class costs more), numpy arrays included, which
orjson writes as they are (a response model would copy every value of every output array into
Python objects on the event loop); pydantic gives both their JSON schemas for the OpenAPI document.

What every dialect shares lives here: the endpoint declaration, what an adapter gets and
returns, the request models' base and their 400 messages, JSON out, and the body of every error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypeAliasType, TypedDict

from ..batcher import Outputs
from ..errors import bad_request

if TYPE_CHECKING:
    from ..model import Model

JSON = "application/json"


class RequestBody(BaseModel):
    """A JSON request body (or a part of one), validated as sent: no string is read as a number, no
    number as a bool. Fields it does not declare are ignored, as the protocols allow."""

    model_config = ConfigDict(strict=True)

    @classmethod
    def example(cls, model: Model, instances: list[Any]) -> dict[str, Any] | None:
        """A valid body for this model (`instances`: one instance of it, in a list), for the document."""
        return None


class ErrorBody(TypedDict):
    """Every error, in every dialect."""

    error: str


class ModelReady(TypedDict):
    """V1's and V2's answer to "is this model ready": 200, or 503 with the reason."""

    name: str
    ready: bool
    error: NotRequired[str]


Instance = TypeAliasType("Instance", Any)
"""One input of the served model: its JSON schema is the served model's (see `openapi`); the model
checks instances itself, with messages that name shapes and values."""


@dataclass(frozen=True, slots=True)
class Call:
    """What an adapter gets: the model name in the path (if any) and the validated request body.

    `binary` is the part of a body after its JSON part (the V2 binary tensor data extension)."""

    model: str | None = None
    body: Any = None
    binary: bytes | None = None


@dataclass(slots=True)
class Reply:
    """What an adapter returns: a response body (or raw bytes), a status and extra headers."""

    body: Mapping[str, Any] | bytes
    """A response body's dict (see `json_bytes`), or bytes written as they are."""
    status: int = 200
    headers: dict[str, str] | None = None
    content_type: str = JSON


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route, declared once: the router calls `call`, the OpenAPI document describes it."""

    method: str
    path: str
    """aiohttp's path template; `{model}` is the served model's name."""
    call: Callable[[Call], Awaitable[Reply]]
    summary: str
    response: Any
    """The type of the 200 body (a `TypedDict`, or `str` for text), for the document."""
    request: type[RequestBody] | None = None
    """The JSON body, validated before `call`; None: no body is read."""
    public: bool = False
    """No bearer token needed (probes, metrics)."""
    answers_not_ready: bool = False
    """Answers 503 while the model is not loaded and warmed up."""
    inference: bool = False
    """Feeds the batcher: while its body is read, the batcher may wait for it."""
    binary_header: str | None = None
    """The header giving the length of the JSON part of a body that carries binary data after it."""
    content_type: str = JSON


def parse(model: type[RequestBody], body: bytes) -> RequestBody:
    """The body as `model`; 400 saying why it is not one, naming the field."""
    if not body:
        raise bad_request("the request body is empty; expected a JSON object")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the request body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(document).__name__}")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise bad_request(describe(error)) from None


_MESSAGES: dict[str, str] = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "too_long": "must have at most {max_length} items",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "literal_error": "must be {expected}",
}
"""What a client reads for pydantic's error types; others keep pydantic's message."""


def describe(error: ValidationError) -> str:
    """The first thing wrong with a body, naming the field as a path (`inputs[0].shape[1]`)."""
    first = error.errors(include_url=False)[0]
    location = first["loc"]
    if first["type"] == "missing":
        parent = _path(location[:-1])
        return f'{parent + ": " if parent else ""}missing field "{location[-1]}"'
    context = first.get("ctx") or {}
    if first["type"] == "too_short":
        message = (
            "must be a non-empty list" if context.get("min_length") == 1 else "must have at least {min_length} items"
        ).format(**context)
    else:
        template = _MESSAGES.get(first["type"])
        message = template.format(**context) if template else first["msg"]
    return f"{_path(location) or 'the request body'} {message}, got {_show(first['input'])}"


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _show(value: Any, limit: int = 60) -> str:
    """The value as the client wrote it (JSON), shortened."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[:limit] + "..."


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A response body as JSON. numpy arrays and scalars are written as lists and numbers (a list of
    integers stays integers), and non-finite floats as null (JSON has no NaN)."""
    return orjson.dumps(body, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)


def _plain(value: Any) -> Any:
    """What orjson does not write itself: a numpy array that is not C-contiguous, or a numpy scalar."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def join(parts: list[Outputs]) -> Outputs:
    """Outputs of several arrays of rows of one request, as one."""
    if len(parts) == 1:
        return parts[0]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
