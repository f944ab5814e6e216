"""`lmaas get`: stored resources printed as `kubectl get` prints them, from the CRDs' printer columns."""

from __future__ import annotations

import json
import time
from typing import Any

from lmaas_api import clock
from lmaas_api.crds import KINDS, load_crds

from .store import dump_yaml


def kind_of(word: str) -> str:
    """A kind from what kubectl accepts: kind, plural, singular or short name, any case."""
    word = word.lower()
    for kind, crd in load_crds().items():
        if word in (kind.lower(), crd.plural, *crd.short_names):
            return kind
    names = ", ".join(crd.plural for crd in load_crds().values())
    raise ValueError(f'the server doesn\'t have a resource type "{word}" (lmaas run knows {names})')


def json_path(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for key in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def age(timestamp: str | None, now: float | None = None) -> str:
    """kubectl's short age: 45s, 12m, 3h, 2d."""
    if not timestamp:
        return "<unknown>"
    seconds = int((now or time.time()) - clock.parse(timestamp).timestamp())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _cell(column: dict[str, Any], value: Any) -> str:
    if value is None:
        return "<none>" if column["name"] != "Age" else "<unknown>"
    if column.get("type") == "date":
        return age(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(bodies: list[dict[str, Any]], output: str = "", show_kind: bool = False) -> str:
    if output in ("yaml", "json"):
        items = bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": bodies}
        return dump_yaml(items) if output == "yaml" else json.dumps(items, indent=2) + "\n"
    blocks = []
    for kind in KINDS:
        of_kind = [b for b in bodies if b["kind"] == kind]
        if not of_kind:
            continue
        crd = load_crds()[kind]
        columns = [c for c in crd.printer_columns if output == "wide" or not c.get("priority")]
        header = ["NAME", *(c["name"].upper() for c in columns)]
        prefix = f"{kind.lower()}.lmaas.io/" if show_kind else ""
        rows = [
            [prefix + b["metadata"]["name"], *(_cell(c, json_path(b, c["jsonPath"])) for c in columns)] for b in of_kind
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [header, *rows]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
