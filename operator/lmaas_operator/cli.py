"""The `lmaas` command: one entry point, one subcommand per role.

Each subcommand imports its role lazily, so the operator image needs no torch and the worker
image needs no kopf.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from .api import contract


def _version() -> str:
    try:
        return version("lmaas")
    except PackageNotFoundError:
        return "unknown"


def _operator(args: argparse.Namespace) -> int:
    from .config import OperatorConfig
    from .main import run_operator

    config = OperatorConfig.from_env()
    if args.namespace is not None:
        config = dataclasses.replace(config, namespace=args.namespace)
    run_operator(config)
    return 0


def _train(args: argparse.Namespace) -> int:
    from lmaas_worker.train import run_training  # torch is imported only here

    return run_training(config_path=args.config, output_dir=args.output_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmaas", description="Large models as a service.")
    parser.add_argument("--version", action="version", version=f"lmaas {_version()}")
    roles = parser.add_subparsers(dest="role", required=True, metavar="COMMAND")

    operator = roles.add_parser(
        "operator",
        help="run the Kubernetes operator against the current kubeconfig (or in-cluster config)",
        description="Run the operator. Settings come from LMAAS_* environment variables (see README).",
    )
    operator.add_argument(
        "--namespace", "-n", default=None,
        help="watch only this namespace (default: LMAAS_NAMESPACE, or the whole cluster)",
    )
    operator.set_defaults(run=_operator)

    train = roles.add_parser(
        "train",
        help="train a TrainJob's model (run under torchrun, one process per rank)",
        description="The TrainJob worker. torchrun sets the distributed contract; the CR comes from --config.",
    )
    train.add_argument("--config", default=os.environ.get(contract.CONFIG_ENV),
                       help=f"the TrainJob as JSON or YAML (default: ${contract.CONFIG_ENV})")
    train.add_argument("--output-dir", default=os.environ.get(contract.OUTPUT_DIR_ENV),
                       help=f"where checkpoints and the artifact go (default: ${contract.OUTPUT_DIR_ENV})")
    train.set_defaults(run=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as error:  # say what is wrong with the settings, without a traceback
        print(f"lmaas {args.role}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
