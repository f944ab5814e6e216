"""Progress lines for machines: one JSON object per line on stdout, from global rank 0 only.

Every line has exactly `contract.PROGRESS_KEYS` (null where a key does not apply). The operator
turns them into the TrainJob's status. On exit, rank 0 also writes the final line (`done` or
`error`) to the termination log, which the kubelet copies into the pod status.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from lmaas_api import contract
from lmaas_api.clock import utc_now

log = logging.getLogger(__name__)

TERMINATION_LOG_ENV = "LMAAS_TERMINATION_LOG"
_TERMINATION_LOG_LIMIT = 4096  # the kubelet keeps at most 4096 bytes of a termination message
_MESSAGE_LIMIT = 2000


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity; a non-finite number is reported as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def progress_line(event: str, **fields: Any) -> dict[str, Any]:
    """A progress object with exactly the contract's keys; unknown keys or events are a bug."""
    if event not in contract.PROGRESS_EVENTS:
        raise ValueError(f"unknown progress event {event!r}")
    unknown = set(fields) - set(contract.PROGRESS_KEYS)
    if unknown:
        raise ValueError(f"progress lines have no key(s) {sorted(unknown)}")
    line = {key: None for key in contract.PROGRESS_KEYS}
    line.update(_finite(fields))
    line["event"] = event
    line["time"] = utc_now()
    return line


class Progress:
    """Emits progress lines; on ranks other than 0 it builds them but prints nothing."""

    def __init__(self, enabled: bool, stream: TextIO | None = None):
        self.enabled = enabled
        self._stream = stream
        self.last: dict[str, Any] | None = None

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        line = progress_line(event, **fields)
        if self.enabled:
            stream = self._stream or sys.stdout
            stream.write(json.dumps(line, allow_nan=False) + "\n")
            stream.flush()
        self.last = line
        return line


def termination_log_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(TERMINATION_LOG_ENV) or contract.TERMINATION_LOG)


def write_termination_log(summary: dict[str, Any], environ: dict[str, str] | None = None) -> Path | None:
    """Write `summary` as one JSON line where the kubelet reads it; None when there is no such place.

    Outside a pod the default path's directory may not exist: that is skipped silently. A path
    that exists but cannot be written is logged, not raised: the training itself went as reported.
    """
    path = termination_log_path(environ)
    if not path.parent.is_dir():
        return None
    summary = dict(summary)
    if isinstance(summary.get("message"), str) and len(summary["message"]) > _MESSAGE_LIMIT:
        summary["message"] = summary["message"][:_MESSAGE_LIMIT] + "..."
    text = json.dumps(summary, allow_nan=False)
    if len(text.encode()) > _TERMINATION_LOG_LIMIT and isinstance(summary.get("artifact"), dict):
        summary["artifact"] = {k: v for k, v in summary["artifact"].items() if k != "metrics"}
        text = json.dumps(summary, allow_nan=False)
    try:
        path.write_text(text + "\n")
    except OSError as error:
        log.warning("could not write the termination log %s: %s", path, error)
        return None
    return path
