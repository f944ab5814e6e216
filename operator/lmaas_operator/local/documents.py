"""Reading `-f` sources as `kubectl apply -f` does, and validating them as the API server would.

A source is a file, a folder (its *.yaml, *.yml and *.json files, in name order, not recursive),
or `-` for stdin; files may hold several YAML documents. lmaas kinds are validated against their
CRDs (schema, defaults and CEL rules: the messages `kubectl apply` would print). Secrets are kept
in memory for secretKeyRefs; other Kubernetes kinds (a PersistentVolumeClaim, say) have no local
meaning and are reported as skipped.
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmaas_api.crds import KINDS
from lmaas_api.validation import InvalidResource, validate

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Documents:
    resources: list[dict[str, Any]] = field(default_factory=list)
    """lmaas resources, validated and defaulted, in the order given."""
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _files(source: str) -> list[tuple[str, str]]:
    """(label, text) of each file a source names."""
    if source == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(source)
    if path.is_dir():
        return [(str(p), p.read_text()) for p in sorted(path.iterdir()) if p.suffix in SUFFIXES and p.is_file()]
    if path.is_file():
        return [(str(path), path.read_text())]
    raise FileNotFoundError(f'the path "{source}" does not exist')


def load_documents(sources: list[str]) -> Documents:
    found = Documents()
    seen: dict[tuple[str, str], str] = {}
    for source in sources:
        try:
            files = _files(source)
        except FileNotFoundError as error:
            found.errors.append(f"error: {error}")
            continue
        if not files:
            found.errors.append(f'error: no objects passed to run: "{source}" holds no .yaml, .yml or .json file')
        for label, text in files:
            try:
                documents = [d for d in yaml.safe_load_all(text) if d is not None]
            except yaml.YAMLError as error:
                found.errors.append(f"{label}: not YAML: {error}")
                continue
            for document in documents:
                _take(found, seen, label, document)
    return found


def _take(found: Documents, seen: dict[tuple[str, str], str], label: str, document: Any) -> None:
    if not isinstance(document, dict) or not document.get("kind"):
        found.errors.append(f"{label}: a document without a kind: every object needs apiVersion and kind")
        return
    kind, name = document["kind"], (document.get("metadata") or {}).get("name", "")
    if kind == "Secret" and document.get("apiVersion") == "v1":
        try:
            found.secrets[name] = _secret_values(document)
        except ValueError as error:  # binascii.Error and UnicodeDecodeError are ValueErrors
            found.errors.append(f'{label}: Secret "{name}": {error}')
        return
    if kind not in KINDS or not str(document.get("apiVersion", "")).startswith("lmaas.io/"):
        found.skipped.append(f"{kind}/{name} ({label}): not an lmaas kind; nothing to run locally")
        return
    try:
        body = validate(document)
    except InvalidResource as error:
        found.errors.append(f"{label}: {error}")
        return
    key = (kind, name)
    if key in seen:
        found.errors.append(f'{label}: {kind} "{name}" is also defined in {seen[key]}')
        return
    seen[key] = label
    found.resources.append(body)


def _secret_values(document: dict[str, Any]) -> dict[str, str]:
    values = {}
    for key, encoded in (document.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(encoded), validate=True).decode()
        except ValueError:
            raise ValueError(
                f"data.{key} is not valid base64 of UTF-8 text (put plain text under stringData)"
            ) from None
    values.update({k: str(v) for k, v in (document.get("stringData") or {}).items()})
    return values
