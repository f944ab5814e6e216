"""Hypothesis strategies that draw custom resources from the CRDs' own structural schemas.

What the schema says (types, enums, bounds, patterns, lengths, required fields) is drawn from;
what it leaves open is drawn from small, realistic sets: Kubernetes quantities for int-or-string
fields, and `{}` for fields that preserve unknown fields (model `args`, `pod.affinity`), whose
content the CRD does not constrain and the builders pass on as they are. CEL rules are not
encoded here: the tests keep only the drawn objects that `validate` (schema + CEL) accepts.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from lmaas_api.crds import API_VERSION, load_crds

QUANTITIES = ["1", "2", "250m", "500m", "64Mi", "1Gi", "2Gi", "0.5", 1, 4]
NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
PLAIN_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./", min_size=1, max_size=12)


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy:
    low, high = schema.get("minimum"), schema.get("maximum")
    if integer:
        low = -1000 if low is None else int(low) + (1 if schema.get("exclusiveMinimum") else 0)
        high = max(low, 1000 if high is None else min(int(high), low + 100_000)) - (
            1 if schema.get("exclusiveMaximum") else 0
        )
        return st.integers(min_value=low, max_value=max(low, high))
    return st.floats(
        min_value=-1e3 if low is None else low,
        max_value=1e3 if high is None else high,
        exclude_min=bool(schema.get("exclusiveMinimum")) and low is not None,
        exclude_max=bool(schema.get("exclusiveMaximum")) and high is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def _string(schema: dict[str, Any]) -> st.SearchStrategy:
    if "pattern" in schema:
        drawn = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        drawn = PLAIN_TEXT
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    return drawn.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))


ONE_OF = (
    re.compile(r"^has\(self\.(\w+)\) != has\(self\.(\w+)\)$"),
    re.compile(r"^\[(has\(self\.\w+\)(?:, has\(self\.\w+\))*)\]\.exists_one\(x, x\)$"),
)
AT_MOST_ONE = re.compile(r"^!\(has\(self\.(\w+)\) && has\(self\.(\w+)\)\)$")


def _groups(schema: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """The fields that CEL says exactly one of, and at most one of, must be set."""
    exactly, at_most = [], []
    for rule in (r["rule"] for r in schema.get("x-kubernetes-validations", [])):
        for shape in ONE_OF:
            if shape.match(rule):
                exactly.append(re.findall(r"self\.(\w+)", rule))
        if match := AT_MOST_ONE.match(rule):
            at_most.append(list(match.groups()))
    return exactly, at_most


def _object(schema: dict[str, Any], properties: dict[str, Any], depth: int) -> st.SearchStrategy:
    """An object; where a CEL rule wants exactly (or at most) one of some fields, it has one of them."""
    required = set(schema.get("required", []))
    exactly, at_most = _groups(schema)
    choices: list[tuple[set[str], set[str]]] = [(set(), set())]  # (must have, must not have)
    for group in exactly + at_most:
        options = [({member}, set(group) - {member}) for member in group]
        if group in at_most:
            options.append((set(), set(group)))
        choices = [(have | more, lack | less) for have, lack in choices for more, less in options]

    def build(have: set[str], lack: set[str]) -> st.SearchStrategy:
        return st.fixed_dictionaries(
            {
                k: from_schema(v, depth + 1)
                for k, v in properties.items()
                if (k in required or k in have) and k not in lack
            },
            optional={
                k: from_schema(v, depth + 1)
                for k, v in properties.items()
                if k not in required and k not in have and k not in lack
            },
        )

    return st.one_of([build(have, lack) for have, lack in choices])


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("x-kubernetes-int-or-string"):
        return st.sampled_from(QUANTITIES)
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "string":
        return _string(schema)
    if kind == "array":
        return st.lists(
            from_schema(schema["items"], depth + 1),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
        )
    if kind == "object":
        properties = schema.get("properties")
        if properties and depth < 8:
            return _object(schema, properties, depth)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return st.dictionaries(NAMES, from_schema(extra, depth + 1), max_size=2)
        return st.just({})
    return st.just({})


def resources(kind: str) -> st.SearchStrategy:
    """Whole objects of `kind` (apiVersion, kind, metadata.name, spec), not yet validated."""
    spec = load_crds()[kind].schema["properties"]["spec"]
    return st.builds(
        lambda name, body: {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": body},
        NAMES,
        from_schema(spec),
    )
