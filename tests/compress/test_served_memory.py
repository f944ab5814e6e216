"""A served int8 model takes no more of its process's memory than the float32 model it came from.

Each artifact is served as `lmaas serve` does (`open_model(...).load()`, then the warm-up) in a fresh
process with the default allocator; the resident set size is read after the imports (every artifact
format's among them) and once ready, both now (VmRSS) and at its peak (VmHWM, restarted after the
imports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from lmaas_api import contract
from lmaas_api.card import Quantization
from lmaas_api.spec import ModelDefinition
from lmaas_worker.artifacts import compressed, dense
from lmaas_worker.models import mlp
from tests.artifact_code import digits_card

pytestmark = pytest.mark.slow

HIDDEN = [4096, 4096]  # 17 M weights: 67 MB in float32, well above what imports and kernels' setup vary by

SERVE = """
import json, sys
from pathlib import Path
from lmaas_worker.serve.model import open_model

def resident():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}

Path("/proc/self/clear_refs").write_text("5")  # the peak restarts here
before = resident()
model = open_model(Path(sys.argv[1]), None)
model.load()
model.warm_up(32)
after = resident()
print(json.dumps({key: after[key] - before[key] for key in after}))
"""


def served_mib(artifact) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", SERVE, str(artifact)], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def float_and_int8(tmp_path_factory):
    directory = tmp_path_factory.mktemp("served-memory")
    definition = ModelDefinition(builtin="mlp", args={"in_features": 64, "num_classes": 10, "hidden": HIDDEN})
    torch.manual_seed(0)
    module = mlp.build(64, 10, hidden=HIDDEN)
    card = digits_card(definition)
    dense.save(directory / "float32", module.state_dict(), card, {})
    compressed.save(
        directory / "int8", module, card.model_copy(update={"quantization": Quantization(scheme="int8")}), {}, sizes={}
    )
    assert (directory / "int8" / contract.WEIGHTS_FILE).stat().st_size < 0.3 * (
        directory / "float32" / contract.WEIGHTS_FILE
    ).stat().st_size
    return directory / "float32", directory / "int8"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_serving_the_int8_artifact_takes_no_more_resident_memory_than_the_float_one(float_and_int8):
    before, after = (served_mib(artifact) for artifact in float_and_int8)
    assert after["VmRSS"] <= before["VmRSS"], f"resident: {after['VmRSS']:.1f} MiB int8, {before['VmRSS']:.1f} float32"
    assert after["VmHWM"] <= before["VmHWM"], f"peak: {after['VmHWM']:.1f} MiB int8, {before['VmHWM']:.1f} float32"
