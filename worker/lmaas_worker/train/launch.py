"""`lmaas train --launch`: a TrainJob pod's command. Check the configuration, then run torchrun's agent.

torchrun reports any failed worker as exit status 1, so the worker's reserved configuration-error
status (78) would never reach the Job's `podFailurePolicy`, and a TrainJob with a bad spec would
spend its whole restart budget. The launcher therefore
1. builds the data and the model once on this node, without a process group (`build.prepare`): a
   `ConfigError` there ends the pod with 78 before any rendezvous, writing the error line to the
   termination log for the operator;
2. runs torchrun's agent in this process (`torch.distributed.run`, exactly what the `torchrun`
   script does, with its `PET_*` environment), and if any worker still exits 78 (a problem only a
   worker can see), exits 78 too.
"""

from __future__ import annotations

import logging
import os

from lmaas_api import contract
from lmaas_api.errors import ConfigError

from ..log import setup_logging
from ..progress import Progress, write_termination_log
from .build import prepare
from .config import load_train_config

log = logging.getLogger("lmaas_worker.train.launch")

WORKER_ARGS = ["--no-python", "lmaas", "train"]


def launch_training(config_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None) -> int:
    setup_logging(0)
    if os.environ.get(contract.CONFIG_ENV) is None and config_path is not None:
        os.environ[contract.CONFIG_ENV] = str(config_path)  # the workers read the same file
    if os.environ.get(contract.OUTPUT_DIR_ENV) is None and output_dir is not None:
        os.environ[contract.OUTPUT_DIR_ENV] = str(output_dir)
    try:
        prepare(load_train_config(os.environ.get(contract.CONFIG_ENV), os.environ.get(contract.OUTPUT_DIR_ENV)))
    except ConfigError as error:
        log.error("configuration error (before starting torchrun): %s", error)
        write_termination_log(Progress(enabled=True).emit("error", message=f"ConfigError: {error}"))
        return contract.EXIT_CONFIG_ERROR
    return run_agent(WORKER_ARGS)


def run_agent(worker_args: list[str]) -> int:
    """torchrun's agent, here; the exit status says whether a worker found a configuration error."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        torchrun.run(torchrun.parse_args(worker_args))
    except ChildFailedError as error:
        codes = sorted({failure.exitcode for failure in error.failures.values()})
        log.error("training failed: worker exit status(es) %s", codes)
        return contract.EXIT_CONFIG_ERROR if contract.EXIT_CONFIG_ERROR in codes else 1
    return 0
