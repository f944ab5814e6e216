"""Validate a custom resource against its CRD the way the API server does, without a server.

`lmaas run` and the unit tests use this: defaults are applied first, then the structural schema
(types, enums, bounds, patterns, required and unknown fields, list-map keys), then the CEL rules
(`x-kubernetes-validations`, with `oldSelf` when an update is checked). Messages name the field
as the API server does, e.g. ``spec.nodes: Invalid value: 0: should be greater than or equal to 1``.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from .crds import API_VERSION, load_crds

_CEL = celpy.Environment()


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidResource(ValueError):
    """A resource that the API server would reject; `errors` names every field at fault."""

    def __init__(self, kind: str, name: str, errors: list[FieldError]):
        self.errors = errors
        details = "; ".join(str(e) for e in errors)
        super().__init__(f'{kind} "{name}" is invalid: {details}')


def validate(obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return `obj` with the CRD's defaults applied, or raise InvalidResource.

    `old` is the stored object when checking an update; transition rules need it.
    """
    kind = obj.get("kind", "")
    name = (obj.get("metadata") or {}).get("name", "")
    crd = load_crds().get(kind)
    if obj.get("apiVersion") != API_VERSION or crd is None:
        raise InvalidResource(
            kind or "<no kind>",
            name,
            [
                FieldError(
                    "apiVersion",
                    f'Unsupported value: "{obj.get("apiVersion")}/{kind}": '
                    f"supported kinds of {API_VERSION} are {', '.join(load_crds())}",
                )
            ],
        )
    obj = copy.deepcopy(obj)
    apply_defaults(crd.schema, obj)
    errors = []
    if not name:
        errors.append(FieldError("metadata.name", "Required value: name is required"))
    errors += check_schema(crd.schema, obj, "")
    if not errors:
        old_defaulted = None
        if old is not None:
            old_defaulted = copy.deepcopy(old)
            apply_defaults(crd.schema, old_defaulted)
        errors += check_rules(crd.schema, obj, old_defaulted, "")
    if errors:
        raise InvalidResource(kind, name, errors)
    return obj


def apply_defaults(schema: dict[str, Any], value: Any) -> None:
    """Fill in `default`s top-down, as the API server does before validating."""
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(value) - set(schema.get("properties", {})):
                apply_defaults(extra, value[key])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(schema["items"], item)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return str(value)


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def check_schema(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    """Structural validation of one value; returns every error found."""
    if value is None and schema.get("nullable"):
        return []
    if schema.get("x-kubernetes-int-or-string"):
        if not (_TYPES["integer"](value) or _TYPES["string"](value)):
            return [FieldError(path, f"Invalid value: {_show(value)}: must be an integer or a string")]
        if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
            return [FieldError(path, f"Invalid value: {_show(value)}: should match '{schema['pattern']}'")]
        return []
    expected = schema.get("type")
    if expected and not _TYPES[expected](value):
        return [FieldError(path, f"Invalid value: {_show(value)}: must be of type {expected}")]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"])
        return [FieldError(path, f"Unsupported value: {_show(value)}: supported values: {allowed}")]
    if isinstance(value, dict):
        return _check_object(schema, value, path)
    if isinstance(value, list):
        return _check_array(schema, value, path)
    return _check_scalar(schema, value, path)


def _check_object(schema: dict[str, Any], value: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    properties = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in value:
            errors.append(FieldError(_join(path, key), "Required value"))
    extra = schema.get("additionalProperties")
    for key, sub_value in value.items():
        if key in properties:
            errors += check_schema(properties[key], sub_value, _join(path, key))
        elif isinstance(extra, dict):
            errors += check_schema(extra, sub_value, _join(path, key))
        elif not (schema.get("x-kubernetes-preserve-unknown-fields") or (path == "metadata")):
            errors.append(FieldError(_join(path, key), f'unknown field "{_join(path, key)}"'))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(FieldError(path, f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"))
    return errors


def _check_array(schema: dict[str, Any], value: list[Any], path: str) -> list[FieldError]:
    errors = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(FieldError(path, f"Invalid value: {len(value)}: should have at least {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(FieldError(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
    for index, item in enumerate(value):
        errors += check_schema(schema.get("items", {}), item, f"{path}[{index}]")
    if schema.get("x-kubernetes-list-type") == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = set()
        for index, item in enumerate(value):
            key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else None
            if key in seen:
                shown = ", ".join(f"{k}={item.get(k)}" for k in keys)
                errors.append(FieldError(f"{path}[{index}]", f"Duplicate value: {shown}"))
            seen.add(key)
    return errors


def _check_scalar(schema: dict[str, Any], value: Any, path: str) -> list[FieldError]:
    shown = _show(value)
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return [FieldError(path, f"Invalid value: {shown}: should be at least {schema['minLength']} chars long")]
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return [FieldError(path, f"Too long: may not be more than {schema['maxLength']} bytes")]
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return [FieldError(path, f"Invalid value: {shown}: should match '{schema['pattern']}'")]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None:
            if schema.get("exclusiveMinimum") and value <= low:
                return [FieldError(path, f"Invalid value: {shown}: should be greater than {low}")]
            if value < low:
                return [FieldError(path, f"Invalid value: {shown}: should be greater than or equal to {low}")]
        if high is not None:
            if schema.get("exclusiveMaximum") and value >= high:
                return [FieldError(path, f"Invalid value: {shown}: should be less than {high}")]
            if value > high:
                return [FieldError(path, f"Invalid value: {shown}: should be less than or equal to {high}")]
    return []


@functools.cache
def _program(expression: str) -> celpy.Runner:
    return _CEL.program(_CEL.compile(expression))


def _typed(schema: dict[str, Any], value: Any) -> Any:
    """A value as the API server types it for CEL: a `number` is a double even when written 2
    (CEL has no int == double)."""
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        return {
            k: _typed(schema.get("properties", {}).get(k) or (extra if isinstance(extra, dict) else {}), v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_typed(schema.get("items") or {}, item) for item in value]
    return value


def check_rules(schema: dict[str, Any], value: Any, old: Any, path: str) -> list[FieldError]:
    """Evaluate the CEL rules of `schema` and of every schema below it, bottom-up like the server."""
    errors = []
    if isinstance(value, dict):
        for key, sub_schema in schema.get("properties", {}).items():
            if key in value:
                sub_old = old.get(key) if isinstance(old, dict) else None
                errors += check_rules(sub_schema, value[key], sub_old, _join(path, key))
    elif isinstance(value, list) and "items" in schema:
        # Transition rules inside list items would need the server's item correlation; none is used.
        for index, item in enumerate(value):
            errors += check_rules(schema["items"], item, None, f"{path}[{index}]")
    for rule in schema.get("x-kubernetes-validations", []):
        is_transition = "oldSelf" in rule["rule"]
        if is_transition and old is None:
            continue
        activation = {"self": json_to_cel(_typed(schema, value))}
        if is_transition:
            activation["oldSelf"] = json_to_cel(_typed(schema, old))
        result = _program(rule["rule"]).evaluate(activation)
        if isinstance(result, celpy.celtypes.BoolType) and result:
            continue
        if not isinstance(result, celpy.celtypes.BoolType):
            # The API server rejects a rule that errors at run time too, and says so.
            errors.append(
                FieldError(
                    path or "<root>", f"Invalid value: {_show(value)}: rule {rule['rule']!r} failed: {str(result)}"
                )
            )
            continue
        if "messageExpression" in rule:
            message = str(_program(rule["messageExpression"]).evaluate(activation))
        else:
            message = rule.get("message", f"failed rule: {rule['rule']}")
        errors.append(FieldError(path or "<root>", f"Invalid value: {_show(value)}: {message}"))
    return errors
