"""The CRDs in crds/ are the API's single source of truth; this module finds and reads them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GROUP = "lmaas.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KINDS = ("TrainJob", "CompressJob", "ModelService")


@dataclass(frozen=True)
class CustomResourceDefinition:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    schema: dict[str, Any]
    printer_columns: tuple[dict[str, Any], ...]
    body: dict[str, Any]


def crd_dir() -> Path:
    """crds/ at the repository root; an installed wheel carries a copy inside the package."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent.parent / "crds", package / "crds"):
        if (candidate / "trainjobs.lmaas.io.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"the lmaas CRDs are neither in {package.parent.parent / 'crds'} nor in {package / 'crds'}")


@functools.cache
def load_crds() -> dict[str, CustomResourceDefinition]:
    """The lmaas CRDs by kind (kopf's peering CRDs are skipped)."""
    crds = {}
    for path in sorted(crd_dir().glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition" or doc["spec"]["group"] != GROUP:
                continue
            names = doc["spec"]["names"]
            (version,) = [v for v in doc["spec"]["versions"] if v["name"] == VERSION]
            crds[names["kind"]] = CustomResourceDefinition(
                kind=names["kind"],
                plural=names["plural"],
                short_names=tuple(names.get("shortNames", ())),
                schema=version["schema"]["openAPIV3Schema"],
                printer_columns=tuple(version.get("additionalPrinterColumns", ())),
                body=doc,
            )
    return crds
