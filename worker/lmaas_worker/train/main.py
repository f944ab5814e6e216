"""`lmaas train`: set up logging, read the config, build, train, write the artifact, close.

Run under torchrun (one process per rank) or, for a single process, on its own. Exit status:
0 when the artifact is written; `contract.EXIT_CONFIG_ERROR` (78) when the configuration cannot
work; any other failure propagates as an exception (non-zero status, so torchrun and the Job may
restart the workers, which then resume from the latest checkpoint).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from lmaas_api import contract
from lmaas_api.errors import ConfigError

from ..distributed import close_distributed, global_rank, init_distributed
from ..log import setup_logging
from ..progress import Progress, write_termination_log
from .build import build_job
from .config import load_train_config
from .loop import Trainer

log = logging.getLogger("lmaas_worker.train")


def run_training(config_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None) -> int:
    rank = global_rank()
    setup_logging(rank)
    progress = Progress(enabled=rank == 0)
    try:
        config = load_train_config(
            config_path or os.environ.get(contract.CONFIG_ENV), output_dir or os.environ.get(contract.OUTPUT_DIR_ENV)
        )
        context = init_distributed()
        job = build_job(config, context)
        done = Trainer(job, context, progress).run()
        close_distributed(wait_for_peers=True)  # every rank ends once the artifact exists
    except ConfigError as error:
        log.error("configuration error: %s", error)
        _finish(rank, progress.emit("error", message=f"ConfigError: {error}"))
        return contract.EXIT_CONFIG_ERROR
    except Exception as error:
        log.error("training failed: %s: %s", type(error).__name__, error)
        _finish(rank, progress.emit("error", message=f"{type(error).__name__}: {error}"))
        raise
    finally:
        close_distributed()
    _finish(rank, done)
    return 0


def _finish(rank: int, summary: dict[str, Any]) -> None:
    if rank == 0:
        write_termination_log(summary)
