"""What the operator keeps on a resource for kopf: the last handled spec as
status.observedGeneration, and handler progress in annotations without kopf's marker."""

from __future__ import annotations

import json

import kopf


class GenerationDiffBase(kopf.DiffBaseStorage):
    """kopf's change detection on `metadata.generation` against `status.observedGeneration`, the
    Kubernetes way, instead of a copy of the spec in an annotation.

    The API server bumps a custom resource's generation on every change outside metadata and
    status (its spec); once the create or update handlers are done, kopf records the generation
    they applied as observedGeneration, in the same status write as theirs. kopf's stored copy
    cost a second write per handled spec (to the resource itself), a watch event for it, and a
    deep copy of every event's body to compare. A resource with no observedGeneration is new
    (create); one whose generation moved on was edited (update). Status timers must not record a
    generation they did not apply (see handlers.status.keep_observed_generation)."""

    def build(self, *, body, extra_fields=None):
        outside_spec = sorted(field for field in extra_fields or () if field[0] != "spec")
        if outside_spec:
            raise ValueError(f"a handler watches {outside_spec}: only spec changes are detected")
        return {"spec": {"generation": body["metadata"].get("generation")}}

    def fetch(self, *, body):
        observed = (body.get("status") or {}).get("observedGeneration")
        return None if observed is None else {"spec": {"generation": observed}}

    def store(self, *, body, patch, essence):
        patch.setdefault("status", {})["observedGeneration"] = essence["spec"]["generation"]


class ProgressAnnotations(kopf.AnnotationsProgressStorage):
    """kopf's handler progress in annotations (the same keys and records, so kopf's fetch and
    purge read them), without the `PREFIX/kopf-managed: yes` marker kopf's own store and touch add
    beside them. The marker lets other kopf operators leave these annotations out of their own diff
    bases (no other operator handles lmaas resources) and outlives the progress it marks: a handler
    that succeeds at once stores and purges its progress in the same patch, so the marker alone was
    a write to the resource itself, one per resource. kopf's way to leave it out is a storage of
    one's own: these are kopf's store and touch without the marker, through kopf's public names
    only (tests/unit/operator/test_persistence.py checks them against kopf's own)."""

    def store(self, *, key, record, body, patch) -> None:
        encoded = json.dumps({k: v for k, v in record.items() if self.verbose or v is not None}, separators=(",", ":"))
        for full_key in self.make_keys(key, body=body):
            patch.metadata.annotations[full_key] = encoded

    def touch(self, *, body, patch, value) -> None:
        for full_key in self.make_keys(self.touch_key, body=body):
            if body.metadata.annotations.get(full_key) != value:
                patch.metadata.annotations[full_key] = value
