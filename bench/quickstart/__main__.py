"""How far the quickstart's compression lands from its accuracy bound, over seeds and thread counts.

For each (seed, threads): the quickstart's TrainJob and CompressJob, unchanged but for the
training seed, run by `lmaas run` with OMP_NUM_THREADS=threads; the accuracy delta the CompressJob
reports is collected. Prints each delta, the worst one and its margin to `maxAccuracyDrop` in
points and in validation images, and writes bench/results/quickstart.json.

    python -m bench.quickstart [--seeds 42 1 2 3 4] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from lmaas_worker.data import digits

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "manifests" / "samples" / "quickstart"
RESULTS = REPO / "bench" / "results"
LMAAS = Path(sys.executable).parent / "lmaas"


def jobs_with_seed(seed: int) -> list[dict]:
    """The quickstart's TrainJob (its seed replaced) and CompressJob; the ModelService is left out."""
    train = yaml.safe_load((SAMPLES / "10-train.yaml").read_text())
    compress = yaml.safe_load((SAMPLES / "20-compress.yaml").read_text())
    train["spec"]["hyperparameters"]["seed"] = seed
    return [train, compress]


def run_once(seed: int, threads: int, workdir: Path) -> dict:
    folder = workdir / f"seed{seed}-threads{threads}"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(yaml.safe_dump_all(jobs_with_seed(seed)))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    runs = folder / "runs"
    # a CompressJob that misses its bound fails `lmaas run`; its status says by how much
    subprocess.run(
        [str(LMAAS), "run", "-f", str(folder / "pipeline.yaml"), "--dir", str(runs)], env=env, stdout=subprocess.DEVNULL
    )
    got = subprocess.run(
        [str(LMAAS), "get", "compressjobs", "digits-small", "-o", "json", "--dir", str(runs)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    status = json.loads(got.stdout)["status"]
    report = status.get("report") or {}
    return {
        "seed": seed,
        "threads": threads,
        "phase": status["phase"],
        "delta": report.get("accuracyDelta"),
        "accuracy": [step["accuracy"] for step in report.get("steps", [])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    bound = yaml.safe_load((SAMPLES / "20-compress.yaml").read_text())["spec"]["maxAccuracyDrop"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lmaas-quickstart-") as tmp:
        for seed in args.seeds:
            for threads in args.threads:
                row = run_once(seed, threads, Path(tmp))
                rows.append(row)
                print(json.dumps(row), flush=True)
    deltas = [row["delta"] for row in rows]
    worst = min(deltas)
    validation_images = len(digits.load().val)
    print(
        f"accuracy delta over {len(rows)} runs: median {statistics.median(deltas):+.3f}, "
        f"range {worst:+.3f} to {max(deltas):+.3f} points (bound -{bound})"
    )
    margin = bound + worst
    print(
        f"worst run's margin to the bound: {margin:.3f} points = {margin * validation_images / 100:.1f} "
        f"of {validation_images} validation images"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quickstart.json").write_text(json.dumps({"bound": bound, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
