"""`python -m bench.compress.served_memory ARTIFACT`: the resident memory that serving ARTIFACT adds
to a fresh process, as JSON on stdout.

The artifact is loaded as `lmaas serve` does (`open_model(...).load()`) and warmed up at batch 1 and
32 twice: the first time pays for what any model of its kind costs once per process (modules
imported on first load, kernels' first-call setup) and is dropped; the resident set size (Linux,
/proc/self/statm) is read before and after the second. `servedMiB` is the difference; `loadedMiB`
the difference before the warm-up.
"""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

from lmaas_worker.serve.model import open_model

WARM_UP_BATCH = 32


def resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def serve(artifact: Path) -> None:
    model = open_model(artifact, None)
    model.load()
    model.warm_up(WARM_UP_BATCH)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    serve(Path(argv[0]))
    gc.collect()
    before = resident_mib()
    model = open_model(Path(argv[0]), None)
    model.load()
    gc.collect()
    loaded = resident_mib()
    model.warm_up(WARM_UP_BATCH)
    gc.collect()
    served = resident_mib()
    print(json.dumps({"artifact": argv[0], "loadedMiB": round(loaded - before, 3),
                      "servedMiB": round(served - before, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
