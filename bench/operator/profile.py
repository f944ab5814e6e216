"""Where a controller's CPU goes during a burst: py-spy samples of the running process.

`python -m bench.operator --profile` attaches py-spy (https://github.com/benfred/py-spy, not a
dependency of lmaas: `pip install py-spy`) to each controller process from just before the burst
to the end of the run, sampling the thread that holds the GIL (the one running Python; a thread
waiting on a socket or in select() releases it), and writes its folded stacks to
bench/results/profile-CONTROLLER-N-RUN.txt. Sampling from outside adds no code to the process
profiled and weighs pure-Python and C functions alike, which a tracing profiler does not.

    python -m bench.operator.profile bench/results/profile-lmaas-200-1.txt [--top 25]

prints the packages and functions that take the most samples by their own time, and the
functions of lmaas and kopf with their callees.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path

SAMPLES_PER_SECOND = 250


class Sampler:
    """py-spy recording one process into a folded-stacks file, until stop()."""

    def __init__(self, pid: int, output: Path):
        executable = shutil.which("py-spy")
        if executable is None:
            raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
        self.output = output
        self._process = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--nonblocking",
                "--gil",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        self._process.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        _, errors = self._process.communicate(timeout=60)
        if not self.output.exists():
            raise RuntimeError(f"py-spy wrote no profile to {self.output}: {errors.strip()}")


def folded(path: Path) -> list[tuple[list[str], int]]:
    """(frames from the outermost, samples) per line of py-spy's raw output."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stacks.append((stack.split(";"), int(count)))
    return stacks


def package(frame: str) -> str:
    """`function (kopf/_core/x.py:12)` → kopf; a module of the standard library → its file name."""
    where = frame.rpartition(" (")[2].rpartition(":")[0]
    return where.split("/")[0] if "/" in where else where.removesuffix(".py")


OURS = ("lmaas_operator/", "kopf/")  # whose functions are listed with their callees


def costs(
    stacks: list[tuple[list[str], int]],
) -> tuple[int, collections.Counter, collections.Counter, collections.Counter]:
    """Total samples; samples per function and per package running itself; samples per function
    of OURS on the stack (counted once per sample, however deep its recursion)."""
    total, own, packages, inclusive = 0, collections.Counter(), collections.Counter(), collections.Counter()
    for frames, count in stacks:
        total += count
        own[frames[-1]] += count
        packages[package(frames[-1])] += count
        for frame in set(frames):
            if any(prefix in frame for prefix in OURS):
                inclusive[frame] += count
    return total, own, packages, inclusive


def report(path: Path, top: int = 25) -> str:
    total, own, packages, inclusive = costs(folded(path))
    lines = [f"{path.name}: {total} samples ({total / SAMPLES_PER_SECOND:.1f} s holding the GIL)"]
    for title, counter in (
        ("package, own time", packages),
        ("function, own time", own),
        ("function of lmaas or kopf, with callees", inclusive),
    ):
        lines.append(f"\n  by {title}:")
        lines += [f"  {count / total:6.1%}  {frame}" for frame, count in counter.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.profiles:
        print(report(path, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
