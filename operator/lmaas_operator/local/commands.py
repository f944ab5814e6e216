"""`lmaas get` and `lmaas delete`: the state of local runs, read and forgotten."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lmaas_api.crds import KINDS
from lmaas_api.resource import CustomResource

from ..pods import output_location
from .store import Store
from .table import kind_of, render
from .workloads import LOCAL_CONFIG


def _not_found(kind: str, name: str) -> int:
    print(f'Error from server (NotFound): {kind.lower()}s.lmaas.io "{name}" not found', file=sys.stderr)
    return 1


def get(root: Path, kind: str | None, name: str | None, output: str | None) -> int:
    store = Store(root)
    try:
        kinds = [kind_of(kind)] if kind else list(KINDS)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    bodies = [b for k in kinds for b in store.list(k) if name in (None, b["metadata"]["name"])]
    if name and not bodies:
        return _not_found(kinds[0], name)
    if not bodies:
        print(f"No resources found in {root}.", file=sys.stderr)
        return 0
    sys.stdout.write(render(bodies, output or "", show_kind=kind is None))
    return 0


def delete(root: Path, kind: str, name: str) -> int:
    """Forget a resource: its state, its pods' logs and, for a job, its output (checkpoints and
    artifact), so that the next `lmaas run` starts it over. Only ever inside the runs directory."""
    store = Store(root)
    try:
        kind = kind_of(kind)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    body = store.get(kind, name)
    if body is None:
        return _not_found(kind, name)
    if kind != "ModelService":
        claim, path = output_location(CustomResource.from_body(body), LOCAL_CONFIG.artifact_claim)
        output = (store.volumes / claim / path).resolve()
        claim_root = (store.volumes / claim).resolve()
        if output == claim_root or claim_root not in output.parents:
            print(
                f"error: {kind} {name} writes to pvc://{claim}/{path}, which is not a directory of its own inside "
                f"{claim_root}; its output is kept, only its state is removed",
                file=sys.stderr,
            )
        else:
            shutil.rmtree(output, ignore_errors=True)
    shutil.rmtree(store.pod_dir(kind, name, "-").parent, ignore_errors=True)
    store.delete(kind, name)
    print(f'{kind.lower()}.lmaas.io "{name}" deleted')
    return 0
