"""The OpenAPI 3.1 document served at `/openapi.json`, generated from the routes and the pydantic
models of their bodies, for the model actually served.

The bodies' schemas are pydantic's; what an instance is (`Instance`) is the served model's: an
array of its input shape, or a text in its vocabulary (or token ids). The model-name path
parameter admits this model's name only. So a client generator or a fuzzer (schemathesis) sees
exactly what the server accepts. Every operation lists every status it can answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

import numpy as np
from pydantic import Field, StringConstraints, TypeAdapter

from .model import ClassifierModel, LanguageModel, Model
from .protocols import JSON, Endpoint, ErrorBody

REF_TEMPLATE = "#/components/schemas/{model}"
FLOAT32_MAX = float(np.finfo(np.float32).max)


def build_openapi(
    routes: Iterable[tuple[str, Endpoint]], model: Model, auth: bool, version: str, max_body_bytes: int
) -> dict[str, Any]:
    """The document of `routes` ((path template, endpoint) pairs, as the router holds them)."""
    routes = list(routes)
    bodies = {(ErrorBody, "serialization")}
    for _, endpoint in routes:
        bodies.add((endpoint.response, "serialization"))
        if endpoint.request is not None:
            bodies.add((endpoint.request, "validation"))
    refs, definitions = TypeAdapter.json_schemas(
        [(body, mode, TypeAdapter(body)) for body, mode in bodies], ref_template=REF_TEMPLATE
    )
    schemas = definitions.get("$defs", {})
    schemas["Instance"] = TypeAdapter(_instance_type(model)).json_schema()
    instances = _example_instances(model)
    error = refs[(ErrorBody, "serialization")]

    def operation(path: str, endpoint: Endpoint) -> dict[str, Any]:
        named = "{model}" in path
        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "content": {endpoint.content_type: {"schema": refs[(endpoint.response, "serialization")]}},
            }
        }
        if endpoint.request is not None:
            responses["400"] = _error(
                error, "The request is malformed or does not fit the model; the message says why."
            )
            responses["413"] = _error(error, f"The body is larger than {max_body_bytes} bytes.")
        if auth and not endpoint.public:
            responses["401"] = _error(error, "Missing or wrong bearer token.")
        if named:
            responses["404"] = _error(error, "No model of that name is served here.")
        if endpoint.answers_not_ready:
            responses["503"] = _error(error, "The model is not loaded and warmed up yet.")
        op: dict[str, Any] = {"summary": endpoint.summary, "responses": responses}
        if named:
            op["parameters"] = [
                {
                    "name": "model",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": [model.name]},
                    "description": "The served model's name (any other name gets 404).",
                }
            ]
        if endpoint.request is not None:
            content: dict[str, Any] = {"schema": refs[(endpoint.request, "validation")]}
            example = endpoint.request.example(model, instances)
            if example is not None:
                content["example"] = example
            op["requestBody"] = {"required": True, "content": {JSON: content}}
        if auth and endpoint.public:
            op["security"] = []
        return op

    paths: dict[str, dict[str, Any]] = {}
    for path, endpoint in routes:
        paths.setdefault(path, {})[endpoint.method.lower()] = operation(path, endpoint)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"lmaas serve: {model.name}",
            "version": version,
            "description": "One model, three dialects: the seed's /predict, KServe V1 and the Open Inference "
            'Protocol (V2). Errors are {"error": message}.',
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _error(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _instance_type(model: Model) -> Any:
    """What the model's `instances_to_rows` takes as one instance, as a type for its JSON schema."""
    if isinstance(model, ClassifierModel):
        instance: Any = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
        for size in reversed(model.input_shape):
            instance = Annotated[list[instance], Field(min_length=size, max_length=size)]
        return Annotated[instance, Field(description=f"One input of shape {list(model.input_shape)}.")]
    assert isinstance(model, LanguageModel)
    characters = "".join({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or re.escape(c) for c in model.vocab)
    text = Annotated[
        str,
        StringConstraints(min_length=1, max_length=model.context, pattern=f"^[{characters}]+$"),
        Field(description="Text; every character must be in the model's vocabulary."),
    ]
    ids = Annotated[
        list[Annotated[int, Field(ge=0, le=len(model.vocab) - 1)]],
        Field(min_length=1, max_length=model.context, description="Token ids."),
    ]
    return Annotated[text | ids, Field(description=f"A text or token ids, at most {model.context} tokens.")]


def _example_instances(model: Model) -> list[Any]:
    """One instance of the model, in a list."""
    row = model.example_row()
    if isinstance(model, LanguageModel):
        return ["".join(model.vocab[i] for i in row[0])]
    return row.tolist()
