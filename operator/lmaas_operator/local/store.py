"""A local run's state on disk, laid out like the cluster's:

ROOT/state/<plural>/<name>.yaml   each resource as stored (metadata, defaulted spec, status)
ROOT/volumes/<claim>/<path>       pvc://CLAIM/PATH, so artifacts sit where a pod would find them
ROOT/pods/<kind>-<name>/<pod>/    each pod's log, termination message and scratch space
ROOT/secrets/<name>/<key>         values for secretKeyRefs (besides Secrets given with -f)
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from lmaas_api.crds import load_crds

UID_NAMESPACE = uuid.UUID("6f1f3c1e-6a1d-4e0b-9f3e-6c6d61617331")


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no &anchors where two fields hold the same object."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False)


def spec_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body.get("spec") or {}, sort_keys=True).encode()).hexdigest()[:16]


class Store:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()  # pods run in their own directories
        self.volumes = self.root / "volumes"
        self.secrets: dict[str, dict[str, str]] = {}
        """Secrets given with -f: name → key → value (never written to disk or printed)."""

    def _path(self, kind: str, name: str) -> Path:
        return self.root / "state" / load_crds()[kind].plural / f"{name}.yaml"

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        path = self._path(kind, name)
        if not path.exists():
            return None
        return yaml.safe_load(path.read_text())

    def list(self, kind: str) -> list[dict[str, Any]]:
        directory = self.root / "state" / load_crds()[kind].plural
        return [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))] if directory.is_dir() else []

    def put(self, body: dict[str, Any]) -> None:
        """Write atomically: `lmaas get` in another terminal never reads half a file."""
        path = self._path(body["kind"], body["metadata"]["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".yaml.partial")
        partial.write_text(dump_yaml(body))
        partial.replace(path)

    def delete(self, kind: str, name: str) -> bool:
        path = self._path(kind, name)
        if not path.exists():
            return False
        path.unlink()
        return True

    def lookup(self, kind: str, name: str) -> dict[str, Any] | None:
        """For `references.resolve_model`: the producer as stored, with its status."""
        return self.get(kind, name)

    def pod_dir(self, kind: str, name: str, pod: str) -> Path:
        return self.root / "pods" / f"{kind.lower()}-{name}" / pod

    def secret(self, name: str, key: str) -> str | None:
        if key in self.secrets.get(name, {}):
            return self.secrets[name][key]
        path = self.root / "secrets" / name / key
        return path.read_text().strip() if path.is_file() else None

    def volume_dir(self, uri: str) -> Path:
        """pvc://CLAIM/PATH → its directory here."""
        claim, _, path = uri[len("pvc://") :].partition("/")
        return self.volumes / claim / path.strip("/")


def stored_body(document: dict[str, Any], previous: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """The object as the API server would store it: identity, generation and creation time kept
    from the previous run; the generation bumped when the spec changed."""
    meta = dict(document["metadata"])
    meta.setdefault("namespace", "default")
    old_meta = (previous or {}).get("metadata") or {}
    meta["uid"] = old_meta.get("uid") or str(
        uuid.uuid5(UID_NAMESPACE, f"{document['kind']}/{meta['namespace']}/{meta['name']}")
    )
    meta["creationTimestamp"] = old_meta.get("creationTimestamp") or now
    generation = int(old_meta.get("generation", 0) or 0)
    changed = previous is None or spec_hash(previous) != spec_hash(document)
    meta["generation"] = generation + 1 if changed else generation
    body = {
        "apiVersion": document["apiVersion"],
        "kind": document["kind"],
        "metadata": meta,
        "spec": document.get("spec") or {},
    }
    if previous and not changed and previous.get("status"):
        body["status"] = previous["status"]
    return body
