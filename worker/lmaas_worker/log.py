"""The worker's one logging setup: logs are for people and go to stderr.

Progress lines for machines go to stdout through `lmaas_worker.progress`, never through logging.
LMAAS_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR; default INFO) and LMAAS_LOG_FORMAT (plain or json;
default plain) mirror the operator's settings. Ranks other than 0 log warnings and errors only,
so that N ranks do not print N copies of the same story.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname,
            "logger": record.name,
            "rank": getattr(record, "rank", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(rank: int, environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    level = env.get("LMAAS_LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "INFO"
    if rank != 0 and level in ("DEBUG", "INFO"):
        level = "DEBUG" if level == "DEBUG" else "WARNING"
    handler = logging.StreamHandler(sys.stderr)
    if env.get("LMAAS_LOG_FORMAT", "plain") == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(lambda record: setattr(record, "rank", rank) or True)
    root = logging.getLogger("lmaas_worker")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
