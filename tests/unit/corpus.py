"""The repository's manifests as test data: samples, the invalid corpus, the CRDs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "manifests" / "samples"
INVALID = REPO / "tests" / "invalid"


def sample_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every lmaas resource among the samples."""
    found = []
    for path in sorted(SAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("lmaas.io/"):
                found.append((str(path.relative_to(SAMPLES)), doc))
    return found


@dataclass(frozen=True)
class InvalidCase:
    """One manifest of tests/invalid: documents to apply in order; the last must be rejected."""

    name: str
    documents: list[dict[str, Any]]
    field: str
    message: str


def invalid_cases() -> list[InvalidCase]:
    cases = []
    for path in sorted(INVALID.glob("*.yaml")):
        text = path.read_text()
        header = dict(re.findall(r"^# expect-(field|message): ?(.*)$", text, flags=re.M))
        cases.append(
            InvalidCase(
                name=path.stem,
                documents=[d for d in yaml.safe_load_all(text) if d],
                field=header["field"],
                message=header["message"],
            )
        )
    return cases
