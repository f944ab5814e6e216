"""`lmaas compress`: set up logging, read the config, run the steps, write the report, close.

Exit status: 0 when every step met the quality bound and the artifact is written;
`contract.EXIT_QUALITY_BOUND` (79) when a step broke maxAccuracyDrop or maxPerplexityIncrease (the
report is written, no artifact); `contract.EXIT_CONFIG_ERROR` (78) when the configuration cannot
work. Any other failure propagates (a crash, which the Job may retry). The final progress line
(`done` or `error`) also goes to the termination log, trimmed to fit the kubelet's 4096 bytes.
"""

from __future__ import annotations

import logging
import os

from lmaas_api import contract
from lmaas_api.errors import ConfigError

from ..log import setup_logging
from ..progress import Progress, write_termination_log
from .config import load_compress_config
from .measure import LatencySettings
from .pipeline import Compressor, build_compression
from .report import fit_line

log = logging.getLogger("lmaas_worker.compress")


def run_compression(
    config_path: str | os.PathLike | None = None,
    input_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
) -> int:
    setup_logging(0)
    progress = Progress(enabled=True)
    try:
        config = load_compress_config(
            config_path or os.environ.get(contract.CONFIG_ENV),
            input_dir or os.environ.get(contract.INPUT_DIR_ENV),
            output_dir or os.environ.get(contract.OUTPUT_DIR_ENV),
        )
        job = build_compression(config, LatencySettings.from_env())
        outcome = Compressor(job, progress).run()
    except ConfigError as error:
        log.error("configuration error: %s", error)
        write_termination_log(fit_line(progress.emit("error", message=f"ConfigError: {error}")))
        return contract.EXIT_CONFIG_ERROR
    except Exception as error:
        log.error("compression failed: %s: %s", type(error).__name__, error)
        write_termination_log(fit_line(progress.emit("error", message=f"{type(error).__name__}: {error}")))
        raise
    write_termination_log(outcome.line)
    return 0 if outcome.passed else contract.EXIT_QUALITY_BOUND
