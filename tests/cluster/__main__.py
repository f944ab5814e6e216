"""`python -m tests.cluster build|up` (run from the repository root)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time

from .launcher import TestCluster, build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the control-plane binary if its sources changed")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    u = sub.add_parser("up", help="start a control plane and keep it up until Ctrl-C")
    u.add_argument("--kubeconfig-out", metavar="PATH", help="also copy the kubeconfig to PATH")
    u.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data) on exit")
    args = ap.parse_args(argv)

    if args.cmd == "build":
        t0 = time.monotonic()
        path = build(force=args.force)
        print(path)
        print(f"({time.monotonic() - t0:.1f}s)", file=sys.stderr)
        return 0

    # A shell starts `cmd &` with SIGINT ignored, and Python keeps it ignored;
    # `up` is meant to be stopped with Ctrl-C or `kill -INT`, so take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with TestCluster(keep_dir=args.keep) as cluster:
        if args.kubeconfig_out:
            shutil.copyfile(cluster.kubeconfig, args.kubeconfig_out)
        print(f"kubeconfig: {cluster.kubeconfig}")
        print(f"export KUBECONFIG={args.kubeconfig_out or cluster.kubeconfig}")
        print(f"server: {cluster.server}  logs: {cluster.log_dir}")
        print("up; Ctrl-C to stop", flush=True)
        try:
            while True:
                signal.pause()
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM via the launcher
            print("stopping", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
