"""The OpenAPI 3.1 document served at `/openapi.json`, built for the model actually served.

The model-name path parameter and the instance schemas are those of this model, so a client
generator or a fuzzer (schemathesis) sees exactly what the server accepts. Every operation lists
every status it can answer.
"""

from __future__ import annotations

import re
from typing import Any

from .explain import METHODS
from .model import EXPLAIN_MAX_INSTANCES, EXPLAIN_MAX_STEPS, ClassifierModel, LanguageModel, Model
from .tensors import ALL_DATATYPES

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


FLOAT32_MAX = 3.4028234663852886e38


def _nested_numbers(shape: tuple[int, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    for size in reversed(shape):
        schema = {"type": "array", "items": schema, "minItems": size, "maxItems": size}
    return schema


def _instance_schemas(model: Model) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(instance, predict response, V1 predict response) schemas for this model's task."""
    if isinstance(model, ClassifierModel):
        instance = _nested_numbers(model.input_shape)
        instance["description"] = f"One input of shape {list(model.input_shape)}."
        probabilities = {
            "type": "array",
            "items": {"type": "array", "items": {"type": ["number", "null"]}},
            "description": "Per instance, the softmax of the logits (null where not finite).",
        }
        predictions = {"type": "array", "items": {"type": "integer"}, "description": "Class indices."}
        return (
            instance,
            {
                "type": "object",
                "required": ["predictions", "probabilities"],
                "properties": {"predictions": predictions, "probabilities": probabilities},
            },
            {"type": "object", "required": ["predictions"], "properties": {"predictions": predictions}},
        )
    assert isinstance(model, LanguageModel)
    characters = "".join(
        re.escape(c) if c not in "\n\t\r" else {"\n": "\\n", "\t": "\\t", "\r": "\\r"}[c] for c in model.vocab
    )
    text = {
        "type": "string",
        "minLength": 1,
        "pattern": f"^[{characters}]+$",
        "description": "Text; every character must be in the model's vocabulary.",
    }
    ids = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "integer", "minimum": 0, "maximum": len(model.vocab) - 1},
        "description": "Token ids.",
    }
    if model.context:
        text["maxLength"] = model.context
        ids["maxItems"] = model.context
    instance = {"oneOf": [text, ids], "description": f"A text or token ids, at most {model.context} tokens."}
    predictions = {"type": "array", "items": {"type": "string"}, "description": "The most likely next character."}
    next_ids = {"type": "array", "items": {"type": "integer"}, "description": "Its token id."}
    return (
        instance,
        {
            "type": "object",
            "required": ["predictions", "next_token_ids"],
            "properties": {"predictions": predictions, "next_token_ids": next_ids},
        },
        {"type": "object", "required": ["predictions"], "properties": {"predictions": predictions}},
    )


def build_openapi(model: Model, auth: bool, version: str, max_body_bytes: int) -> dict[str, Any]:
    instance, predict_response, v1_response = _instance_schemas(model)
    name_parameter = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [model.name]},
        "description": "The served model's name (any other name gets 404).",
    }

    def operation(
        summary: str,
        ok: dict[str, Any],
        *,
        public: bool = False,
        named: bool = False,
        body: dict[str, Any] | None = None,
        example: Any = None,
        not_ready: bool = False,
    ) -> dict[str, Any]:
        responses: dict[str, Any] = {"200": ok}
        if body is not None:
            responses["400"] = _error("The request is malformed or does not fit the model; the message says why.")
            responses["413"] = _error(f"The body is larger than {max_body_bytes} bytes.")
        if auth and not public:
            responses["401"] = _error("Missing or wrong bearer token.")
        if named:
            responses["404"] = _error("No model of that name is served here.")
        if not_ready:
            responses["503"] = _error("The model is not loaded and warmed up yet.")
        op: dict[str, Any] = {"summary": summary, "responses": responses}
        if named:
            op["parameters"] = [name_parameter]
        if body is not None:
            op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
            if example is not None:
                op["requestBody"]["content"][JSON]["example"] = example
        if public and auth:
            op["security"] = []
        return op

    instances = {"type": "array", "minItems": 1, "items": instance}
    row = model.example_row()
    one = row.tolist() if isinstance(model, ClassifierModel) else ["".join(model.vocab[i] for i in row[0])]
    tensor_example = {
        "inputs": [
            {
                "name": model.inputs[0].name,
                "shape": list(row.shape),
                "datatype": model.inputs[0].datatype,
                "data": row.reshape(-1).tolist(),
            }
        ]
    }
    explain_request = {
        "type": "object",
        "required": ["instances"],
        "properties": {
            "instances": {**instances, "maxItems": EXPLAIN_MAX_INSTANCES},
            "method": {"type": "string", "enum": list(METHODS), "default": "integrated_gradients"},
            "steps": {
                "type": "integer",
                "minimum": 1,
                "maximum": EXPLAIN_MAX_STEPS,
                "default": 64,
                "description": "Integration steps of integrated gradients.",
            },
            "target": {
                "oneOf": [{"type": "integer", "minimum": 0}, {"type": "array", "items": {"type": "integer"}}],
                "description": "The class to explain, per instance or for all; default: the predicted one.",
            },
            "baseline": {
                "oneOf": [{"type": "number"}, instance],
                "description": "The reference input of integrated gradients; default: zeros.",
            },
        },
    }
    explain_response = {
        "type": "object",
        "required": ["method", "output", "steps", "explanations"],
        "properties": {
            "method": {"type": "string"},
            "output": {"type": "string", "enum": ["logit"]},
            "steps": {"type": "integer"},
            "explanations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["target", "attributions", "score", "baseline_score", "delta"],
                    "properties": {
                        "target": {"type": "integer"},
                        "attributions": {
                            "type": "array",
                            "description": "One number per input feature, in the input's shape.",
                        },
                        "score": {"type": ["number", "null"]},
                        "baseline_score": {"type": ["number", "null"]},
                        "delta": {
                            "type": ["number", "null"],
                            "description": "sum(attributions) - (score - baseline_score).",
                        },
                    },
                },
            },
        },
    }
    infer_request = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "minItems": 1, "items": _ref("RequestInput")},
            "outputs": {"type": "array", "items": _ref("RequestOutput")},
        },
    }
    paths: dict[str, Any] = {
        "/predict": {
            "post": operation(
                "The seed's predict: inputs in, predictions out",
                _ok(predict_response),
                not_ready=True,
                body={"type": "object", "required": ["inputs"], "properties": {"inputs": instances}},
                example={"inputs": one},
            )
        },
        "/v1/models": {
            "get": operation(
                "KServe V1: the served models",
                _ok(
                    {
                        "type": "object",
                        "required": ["models"],
                        "properties": {"models": {"type": "array", "items": {"type": "string"}}},
                    }
                ),
            )
        },
        "/v1/models/{model_name}": {
            "get": operation(
                "KServe V1: is the model ready", _ok(_ref("ModelReady")), public=True, named=True, not_ready=True
            )
        },
        "/v1/models/{model_name}:predict": {
            "post": operation(
                "KServe V1 predict",
                _ok(v1_response),
                named=True,
                not_ready=True,
                body={"type": "object", "required": ["instances"], "properties": {"instances": instances}},
                example={"instances": one},
            )
        },
        "/v1/models/{model_name}:explain": {
            "post": operation(
                "KServe V1 explain: per-feature attributions of the predicted (or given) class",
                _ok(explain_response),
                named=True,
                not_ready=True,
                body=explain_request,
                example={"instances": one, "steps": 32},
            )
        },
        "/v2": {"get": operation("V2 server metadata", _ok(_ref("ServerMetadata")))},
        "/v2/health/live": {
            "get": operation(
                "V2 liveness",
                _ok({"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}}),
                public=True,
            )
        },
        "/v2/health/ready": {
            "get": operation(
                "V2 readiness: loaded, warmed up and not draining",
                _ok({"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}}),
                public=True,
                not_ready=True,
            )
        },
        "/v2/models/{model_name}": {"get": operation("V2 model metadata", _ok(_ref("ModelMetadata")), named=True)},
        "/v2/models/{model_name}/ready": {
            "get": operation("V2 model readiness", _ok(_ref("ModelReady")), public=True, named=True, not_ready=True)
        },
        "/v2/models/{model_name}/infer": {
            "post": operation(
                "V2 inference with typed tensors (binary tensor data extension supported)",
                _ok(_ref("InferResponse")),
                named=True,
                not_ready=True,
                body=infer_request,
                example=tensor_example,
            )
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (no token needed)",
                "responses": {
                    "200": {
                        "description": "Text exposition format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {"get": operation("This document", _ok({"type": "object"}))},
    }
    if auth:
        paths["/metrics"]["get"]["security"] = []
    tensor_metadata = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"lmaas serve: {model.name}",
            "version": version,
            "description": "One model, three dialects: the seed's /predict, KServe V1 and the Open Inference "
            'Protocol (V2). Errors are {"error": message}.',
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "ModelReady": {
                    "type": "object",
                    "required": ["name", "ready"],
                    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                },
                "ServerMetadata": {
                    "type": "object",
                    "required": ["name", "version", "extensions"],
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "extensions": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "ModelMetadata": {
                    "type": "object",
                    "required": ["name", "platform", "inputs", "outputs"],
                    "properties": {
                        "name": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "string"}},
                        "platform": {"type": "string"},
                        "inputs": {"type": "array", "items": tensor_metadata},
                        "outputs": {"type": "array", "items": tensor_metadata},
                    },
                },
                "RequestInput": {
                    "type": "object",
                    "required": ["name", "shape", "datatype"],
                    "properties": {
                        "name": {"type": "string", "examples": [model.inputs[0].name]},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "datatype": {"type": "string", "enum": list(ALL_DATATYPES)},
                        "parameters": {"type": "object"},
                        "data": {"type": "array", "description": "Row-major data, flat or nested."},
                    },
                },
                "RequestOutput": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": [spec.name for spec in model.outputs]},
                        "parameters": {"type": "object"},
                    },
                },
                "InferResponse": {
                    "type": "object",
                    "required": ["model_name", "outputs"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "datatype", "shape"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "datatype": {"type": "string"},
                                    "shape": {"type": "array", "items": {"type": "integer"}},
                                    "parameters": {"type": "object"},
                                    "data": {"type": "array", "items": {"type": ["number", "null"]}},
                                },
                            },
                        },
                    },
                },
            }
        },
    }
    if auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
