"""The memory that serving a model artifact takes, float32 against int8, each in a fresh process.

    python -m bench.compress.served_memory FLOAT_ARTIFACT INT8_ARTIFACT   # table, JSON to bench/results/
    python -m bench.compress.served_memory ARTIFACT                       # one artifact, as JSON on stdout

Each artifact is served as `lmaas serve` does (`open_model(...).load()`, then the warm-up at batch
1 and 32) in a process of its own, which has imported everything a load imports (every artifact
format, with `lmaas_worker.serve.model`) before measuring. Figures are growths over that point, in
MiB, from /proc/self/status (Linux): `loadedMiB` and `servedMiB` the resident set (VmRSS) after the
load and after the warm-up, `peakMiB` its high-water mark (VmHWM, restarted after the imports),
`anonMiB` the anonymous part (RssAnon: tensors and heap, without the shared libraries' pages and
the mapped weights file). They include what a model of its kind costs once per process (kernel
libraries' pages, first-call setup), as a served process pays it. The allocator is the
environment's: run it once as is and once with MALLOC_MMAP_THRESHOLD_=131072 to see glibc's part.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lmaas_worker.serve.model import open_model

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
WARM_UP_BATCH = 32
FIELDS = ("VmRSS", "VmHWM", "RssAnon")


def process_mib() -> dict[str, float]:
    lines = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {key: int(lines[key].split()[0]) / 1024 for key in FIELDS}


def measure(artifact: Path) -> dict[str, float | str]:
    """What serving `artifact` adds to this process's memory (call it once, in a fresh process)."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM restarts from the current resident set
    before = process_mib()
    model = open_model(artifact, None)
    model.load()
    loaded = process_mib()
    model.warm_up(WARM_UP_BATCH)
    served = process_mib()
    return {
        "artifact": str(artifact),
        "loadedMiB": round(loaded["VmRSS"] - before["VmRSS"], 2),
        "servedMiB": round(served["VmRSS"] - before["VmRSS"], 2),
        "peakMiB": round(served["VmHWM"] - before["VmHWM"], 2),
        "anonMiB": round(served["RssAnon"] - before["RssAnon"], 2),
    }


def measure_fresh(artifact: Path) -> dict[str, float | str]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.compress.served_memory", str(artifact)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def table(float32: dict[str, float | str], int8: dict[str, float | str]) -> str:
    lines = ["| MiB | float32 | int8 | int8 / float32 |", "|---|---|---|---|"]
    for key, name in (
        ("loadedMiB", "loaded (VmRSS)"),
        ("servedMiB", "served (VmRSS)"),
        ("peakMiB", "peak (VmHWM)"),
        ("anonMiB", "served, anonymous (RssAnon)"),
    ):
        before, after = float(float32[key]), float(int8[key])
        lines.append(f"| {name} | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) == 1:
        print(json.dumps(measure(Path(argv[0]))))
        return 0
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    float32, int8 = (measure_fresh(Path(a)) for a in argv)
    print(table(float32, int8))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"served-memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"float32": float32, "int8": int8}, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
