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
from pathlib import Path

from lmaas_api import contract
from lmaas_api.errors import ConfigError


def _version() -> str:
    try:
        return version("lmaas")
    except PackageNotFoundError:
        return "unknown"


def _operator(args: argparse.Namespace) -> int:
    from lmaas_operator.config import OperatorConfig
    from lmaas_operator.main import run_operator

    config = OperatorConfig.from_env()
    if args.namespace is not None:
        config = dataclasses.replace(config, namespace=args.namespace)
    run_operator(config)
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.launch:
        from lmaas_worker.train.launch import launch_training  # torch is imported only here

        return launch_training(config_path=args.config, output_dir=args.output_dir)
    from lmaas_worker.train import run_training

    return run_training(config_path=args.config, output_dir=args.output_dir)


def _compress(args: argparse.Namespace) -> int:
    from lmaas_worker.compress import run_compression  # torch is imported only here

    return run_compression(config_path=args.config, input_dir=args.input_dir, output_dir=args.output_dir)


def _serve(args: argparse.Namespace) -> int:
    from lmaas_worker.serve import run_server  # torch is imported only here

    return run_server(
        config_path=args.config,
        model_dir=args.model_dir,
        host=args.host,
        port=args.port,
        name=args.name,
        max_batch_size=args.max_batch_size,
        max_latency_ms=args.max_latency_ms,
        threads=args.threads,
        trust_artifact_code=args.trust_artifact_code,
    )


RUNS_DIR_ENV = "LMAAS_RUNS_DIR"
DEFAULT_RUNS_DIR = "lmaas-runs"


def _run(args: argparse.Namespace) -> int:
    from lmaas_operator.local.runner import Runner  # no torch here either: the workers are child processes

    return Runner(Path(args.dir), base_port=args.port).run(args.filename)


def _get(args: argparse.Namespace) -> int:
    from lmaas_operator.local.commands import get

    return get(Path(args.dir), args.kind, args.name, args.output)


def _delete(args: argparse.Namespace) -> int:
    from lmaas_operator.local.commands import delete

    return delete(Path(args.dir), args.kind, args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmaas", description="Large models as a service.")
    parser.add_argument("--version", action="version", version=f"lmaas {_version()}")
    roles = parser.add_subparsers(dest="role", required=True, metavar="COMMAND")

    operator = roles.add_parser(
        "operator",
        help="run the Kubernetes operator against the current kubeconfig (or in-cluster config)",
        description="Run the operator. Settings come from LMAAS_* environment variables (see docs/operations.md).",
    )
    operator.add_argument(
        "--namespace",
        "-n",
        default=None,
        help="watch only this namespace (default: LMAAS_NAMESPACE, or the whole cluster)",
    )
    operator.set_defaults(run=_operator)

    train = roles.add_parser(
        "train",
        help="train a TrainJob's model (run under torchrun, one process per rank)",
        description="The TrainJob worker. torchrun sets the distributed contract; the CR comes from --config.",
    )
    train.add_argument(
        "--config",
        default=os.environ.get(contract.CONFIG_ENV),
        help=f"the TrainJob as JSON or YAML (default: ${contract.CONFIG_ENV})",
    )
    train.add_argument(
        "--output-dir",
        default=os.environ.get(contract.OUTPUT_DIR_ENV),
        help=f"where checkpoints and the artifact go (default: ${contract.OUTPUT_DIR_ENV})",
    )
    train.add_argument(
        "--launch",
        action="store_true",
        help="a pod's command: check the configuration (exit 78 if it cannot work), then run "
        "torchrun's agent here with its PET_* environment, one worker per rank",
    )
    train.set_defaults(run=_train)

    compress = roles.add_parser(
        "compress",
        help="run a CompressJob's steps (prune, distill, quantize) on a model artifact",
        description="The CompressJob worker: measures every step and enforces the accuracy bound.",
    )
    compress.add_argument(
        "--config",
        default=os.environ.get(contract.CONFIG_ENV),
        help=f"the CompressJob as JSON or YAML (default: ${contract.CONFIG_ENV})",
    )
    compress.add_argument(
        "--input-dir",
        default=os.environ.get(contract.INPUT_DIR_ENV),
        help=f"the input artifact directory (default: ${contract.INPUT_DIR_ENV})",
    )
    compress.add_argument(
        "--output-dir",
        default=os.environ.get(contract.OUTPUT_DIR_ENV),
        help=f"where the artifact and report go (default: ${contract.OUTPUT_DIR_ENV})",
    )
    compress.set_defaults(run=_compress)

    serve = roles.add_parser(
        "serve",
        help="serve a model artifact over REST (/predict, KServe V1, Open Inference Protocol V2)",
        description=f"The ModelService worker. Flags override the ModelService in --config; the bearer token "
        f"comes only from ${contract.AUTH_TOKEN_ENV}.",
    )
    serve.add_argument(
        "--config",
        default=os.environ.get(contract.CONFIG_ENV),
        help=f"the ModelService as JSON or YAML (default: ${contract.CONFIG_ENV}; optional)",
    )
    serve.add_argument(
        "--model-dir",
        default=os.environ.get(contract.INPUT_DIR_ENV),
        help=f"the artifact directory to serve (default: ${contract.INPUT_DIR_ENV})",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default: spec.port, else 8080)")
    serve.add_argument(
        "--name", default=None, help="model name in the URLs (default: the ModelService's name, else the artifact's)"
    )
    serve.add_argument(
        "--max-batch-size", type=int, default=None, help="dynamic batching: most inputs per forward pass"
    )
    serve.add_argument(
        "--max-latency-ms", type=float, default=None, help="dynamic batching: longest wait for a batch to fill"
    )
    serve.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    serve.add_argument(
        "--trust-artifact-code",
        action="store_true",
        default=None,
        help="UNSAFE: import and run the user factory the artifact's model.json names "
        "(default: spec.trustArtifactCode, else only builtin models load)",
    )
    serve.set_defaults(run=_serve)

    runs_dir = os.environ.get(RUNS_DIR_ENV, DEFAULT_RUNS_DIR)
    run = roles.add_parser(
        "run",
        help="run TrainJob, CompressJob and ModelService files on this machine, producers first",
        description="Validate the CRs as the API server would, run the jobs in dependency order with the same "
        "worker code as the pods (a TrainJob's nodes are local torchrun agents), then serve the "
        "ModelServices until Ctrl-C. Running it again skips what succeeded unchanged and resumes "
        "the rest.",
    )
    run.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="a file, a folder of .yaml/.yml/.json files, or - for stdin (repeatable)",
    )
    run.add_argument(
        "--dir",
        default=runs_dir,
        help=f"where state, logs and artifacts go (default: ${RUNS_DIR_ENV}, else ./{DEFAULT_RUNS_DIR})",
    )
    run.add_argument(
        "--port",
        type=int,
        default=None,
        help="port of the first ModelService's first replica (default: its spec.port, else the next free)",
    )
    run.set_defaults(run=_run)

    get = roles.add_parser(
        "get",
        help="show the resources of local runs, as kubectl get does",
        description="Print the resources of `lmaas run` with the CRDs' printer columns.",
    )
    get.add_argument(
        "kind", nargs="?", default=None, help="trainjobs|tj, compressjobs|cpj, modelservices|ms (default: all)"
    )
    get.add_argument("name", nargs="?", default=None)
    get.add_argument("-o", "--output", choices=["wide", "yaml", "json"], default=None)
    get.add_argument("--dir", default=runs_dir, help=f"the runs directory (default: ./{DEFAULT_RUNS_DIR})")
    get.set_defaults(run=_get)

    delete = roles.add_parser(
        "delete",
        help="forget a local run of a resource: its state, logs and output",
        description="Remove a resource's local state, pod logs and (for jobs) output, so "
        "that the next `lmaas run` starts it over.",
    )
    delete.add_argument("kind")
    delete.add_argument("name")
    delete.add_argument("--dir", default=runs_dir, help=f"the runs directory (default: ./{DEFAULT_RUNS_DIR})")
    delete.set_defaults(run=_delete)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as error:  # say what is wrong with the settings, without a traceback
        print(f"lmaas {args.role}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
