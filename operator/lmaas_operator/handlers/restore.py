"""Children deleted by hand, or edited away from what their owner says, are applied again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from .. import kube
from ..job_status import FINISHED
from .bodies import plain


def deleted(event: kopf.RawEvent, **_: Any) -> bool:
    """The filter of an event handler that acts on deletions alone. kopf evaluates it before the
    call, so that the other events of the kind (most of them: every status update) cost no
    handler call (its context, task and outcome)."""
    return event["type"] == "DELETED"


def not_compared(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    """Whether a child's event may need it applied again, when edits are restored too: a deletion,
    or a generation not yet compared with what its owner wants (the child's memo, see
    mark_compared). Most events of a Deployment are status updates of a generation already
    compared; an edit by hand moves the generation on. A kind without generations is compared at
    every event. A filter, so that kopf makes no handler call for the others."""
    generation = body["metadata"].get("generation")
    return event["type"] == "DELETED" or generation is None or memo.get("compared_generation") != generation


def mark_compared(body: kopf.Body, memo: kopf.Memo) -> None:
    memo["compared_generation"] = body["metadata"].get("generation")


def is_subset(wanted: Any, live: Any) -> bool:
    """Whether every field of `wanted` has its value in `live` (the server adds defaults; an
    edit by hand changes or removes what the operator set)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and is_subset(v, live[k]) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(wanted) == len(live) and all(map(is_subset, wanted, live))
    return wanted == live or str(wanted) == str(live)


def child_to_restore(
    event: kopf.RawEvent,
    body: kopf.Body,
    owner: dict[str, Any] | None,
    wanted: list[dict[str, Any]],
    drift: bool,
) -> tuple[dict[str, Any], str] | None:
    """The child to apply again, and why: it was deleted while its owner lives, or (with `drift`)
    edited by hand away from what its owner wants (`wanted`, the owner's children now). A deleted
    owner's children, collected by the garbage collector, find no owner and are left alone; so is
    the Job of a finished owner (ttlSecondsAfterFinished may remove it, and nothing must run again)."""
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return None
    gone = event["type"] == "DELETED"
    if not gone and not drift:
        return None
    if gone and body["kind"] == "Job" and (owner.get("status") or {}).get("phase") in FINISHED:
        return None
    for child in wanted:
        if (child["kind"], child["metadata"]["name"]) != (body["kind"], body["metadata"]["name"]):
            continue
        if gone:
            return child, f"deleted by hand while its {owner['kind']} exists"
        if not is_subset({k: child[k] for k in ("spec", "data") if k in child}, plain(body)):
            return child, "edited by hand"
    return None


async def restore(found: tuple[dict[str, Any], str] | None, logger: logging.Logger) -> None:
    """Apply a child again (off the event loop: the client blocks), and say so."""
    if found is None:
        return
    child, why = found
    await asyncio.to_thread(kube.apply, child)
    logger.warning(
        "restored %s %s/%s, %s", child["kind"], child["metadata"]["namespace"], child["metadata"]["name"], why
    )
