"""lmaas_worker.data.cache under real torchrun: of a node's two ranks, local rank 0 tokenizes while
local rank 1 waits, then both map the one entry; a configuration error found while building reaches
both ranks, which exit 78 instead of one waiting for an entry that never comes."""

from __future__ import annotations

import json

import pytest

from lmaas_api import contract

from .launch import BIN, launch, wait_all, worker_env

pytestmark = pytest.mark.slow

RANK = """
import json, os, sys, time
import torch, torch.distributed as dist
from lmaas_api.errors import ConfigError
from lmaas_worker.data.cache import TokenCache, once_per_node
from pathlib import Path

def build():
    time.sleep(1.0)  # local rank 1 reaches the cache first and must wait
    if sys.argv[2] == "refuse":
        raise ConfigError("spec.dataset.sequenceLength", "too long")
    Path(sys.argv[1]).parent.joinpath(f"built-by-{os.environ['LOCAL_RANK']}").touch()
    return {"train": torch.arange(10) * 7}

def report(fields):  # a file per rank: two ranks' lines on one stdout can run together
    Path(sys.argv[1]).parent.joinpath(f"report-{os.environ['RANK']}.json").write_text(json.dumps(fields))

dist.init_process_group("gloo")
try:
    arrays = once_per_node(TokenCache(Path(sys.argv[1])), {"case": sys.argv[2]}, build, int(os.environ["LOCAL_RANK"]))
except ConfigError as error:
    report({"rank": dist.get_rank(), "error": str(error)})
    dist.destroy_process_group()  # as the worker does: a process group left open can abort the exit
    sys.exit(78)
report({"rank": dist.get_rank(), "train": arrays["train"].tolist()})
dist.destroy_process_group()
"""


def run_two_ranks(tmp_path, case: str):
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    cache = tmp_path / "cache"
    command = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(script), str(cache), case]
    agent = launch(command, worker_env(tmp_path), tmp_path / f"{case}.stderr")
    (code,) = wait_all([agent], timeout=120)
    reports = sorted((json.loads(p.read_text()) for p in tmp_path.glob("report-*.json")), key=lambda r: r["rank"])
    return code, reports, cache, agent


def test_the_first_rank_of_a_node_builds_and_the_other_waits_then_maps_it(tmp_path):
    code, reports, cache, agent = run_two_ranks(tmp_path, "build")
    assert code == 0, agent.stderr()[-3000:]
    assert reports == [{"rank": r, "train": [7 * i for i in range(10)]} for r in (0, 1)]
    assert sorted(p.name for p in tmp_path.glob("built-by-*")) == ["built-by-0"]
    assert len(list(cache.iterdir())) == 1


def test_an_error_while_building_reaches_every_rank_of_the_node(tmp_path):
    code, reports, _, agent = run_two_ranks(tmp_path, "refuse")
    assert code != 0
    assert [r["rank"] for r in reports] == [0, 1], agent.stderr()[-3000:]
    assert all(r["error"] == "spec.dataset.sequenceLength: too long" for r in reports)
    assert f"exitcode  : {contract.EXIT_CONFIG_ERROR}" in agent.stderr()
