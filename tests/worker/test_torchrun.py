"""`lmaas train` under real torchrun on CPU (gloo): several processes per agent and several agents
rendezvousing over c10d on 127.0.0.1, for both strategies. Nothing is mocked."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

from lmaas_api import contract
from lmaas_api.spec import DatasetDefinition
from lmaas_worker.artifacts import load
from lmaas_worker.data import build_datasets, digits
from lmaas_worker.train.checkpoint import CHECKPOINT_FORMAT

from .launch import (
    events,
    launch_job,
    stop,
    trainjob,
    wait_all,
    wait_for_event,
    worker_env,
    worker_ranks,
    write_config,
)

pytestmark = pytest.mark.slow

TOPOLOGIES = {"1x2": (1, 2), "2x1": (2, 1)}  # agents x processes per agent


def digits_job(strategy: str, **hyperparameters) -> dict:
    return trainjob(
        f"digits-{strategy}",
        model={"builtin": "mlp", "args": {"hidden": [128, 64]}},
        dataset={"builtin": "digits", "validationFraction": 0.2},
        strategy=strategy,
        hyperparameters={
            "epochs": 4,
            "maxSteps": 70,
            "batchSize": 32,
            "learningRate": 0.003,
            "seed": 7,
            "logEverySteps": 5,
            **hyperparameters,
        },
        checkpoint={"everySteps": 25, "keep": 2},
    )


def recomputed_accuracy(artifact) -> float:
    """The held-out accuracy (in points) of the reloaded artifact, on the split its card names."""
    module, card = load(artifact)
    data = build_datasets(DatasetDefinition(**card.dataset.model_dump(exclude={"seed"})), seed=card.dataset.seed)
    inputs, labels = data.val.tensors
    with torch.no_grad():
        predictions = module(inputs).argmax(dim=1)
    return 100 * (predictions == labels).double().mean().item()


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_trains_digits_and_the_artifact_reloads(tmp_path, strategy, topology):
    nnodes, nproc = TOPOLOGIES[topology]
    config = write_config(tmp_path, digits_job(strategy))
    output = tmp_path / "out"
    agents = launch_job(tmp_path, config, output, nnodes, nproc)
    codes = wait_all(agents, timeout=120)
    assert codes == [0] * nnodes, "\n".join(a.stderr()[-3000:] for a in agents)

    lines = events(agents)
    for line in lines:
        assert tuple(line) == contract.PROGRESS_KEYS
    assert [e["event"] for e in lines][0] == "start"
    assert [e["event"] for e in lines][-1] == "done"
    losses = [e["loss"] for e in lines if e["event"] == "progress"]
    assert losses[-1] < 0.5 * losses[0]
    done = lines[-1]
    assert done["step"] == done["totalSteps"] == 70
    assert done["evalMetric"] == "accuracy" and done["evalValue"] > 85  # points; chance is 10
    assert done["artifact"]["metrics"]["worldSize"] == 2
    assert done["artifact"]["metrics"]["strategy"] == strategy

    artifact = output / contract.ARTIFACT_SUBDIR
    assert sorted(p.name for p in artifact.iterdir()) == [
        "curves.png",
        "metrics.json",
        "model.json",
        "model.safetensors",
    ]
    assert recomputed_accuracy(artifact) == pytest.approx(done["evalValue"], abs=1e-9)
    metrics = json.loads((artifact / contract.METRICS_FILE).read_text())
    assert metrics["accuracy"] == done["evalValue"]
    # checkpoints every 25 steps and at the end, not at epoch ends (23, 46, 69 with 2 ranks): the last two stay
    assert sorted(p.name for p in (output / contract.CHECKPOINT_SUBDIR).iterdir()) == ["step-00000050", "step-00000070"]
    assert json.loads((tmp_path / "termination-log").read_text())["event"] == "done"


@pytest.mark.parametrize("strategy,topology", [("ddp", "1x2"), ("fsdp", "2x1")])
def test_a_killed_rank_resumes_from_the_latest_checkpoint(tmp_path, strategy, topology):
    nnodes, nproc = TOPOLOGIES[topology]
    every = 10
    resource = trainjob(
        f"killed-{strategy}",
        model={"factory": "tests.worker.factories:slow_mlp", "args": {"hidden": [64], "delay": 0.02}},
        dataset={"builtin": "digits"},
        strategy=strategy,
        hyperparameters={"epochs": 10, "maxSteps": 90, "batchSize": 32, "learningRate": 0.003, "logEverySteps": 1},
        checkpoint={"everySteps": every, "keep": 3},
    )
    config = write_config(tmp_path, resource)
    agents = launch_job(tmp_path, config, tmp_path / "out", nnodes, nproc, max_restarts=1)
    try:
        wait_for_event(agents, lambda e: e.get("event") == "checkpoint" and e["step"] >= 2 * every, timeout=90)
        victim_agent = agents[-1]
        ranks = worker_ranks(victim_agent)
        assert ranks, "no worker processes found under the torchrun agent"
        os.kill(ranks[max(ranks)], signal.SIGKILL)
        codes = wait_all(agents, timeout=120)
    finally:
        stop(agents)
    assert codes == [0] * nnodes, "\n".join(a.stderr()[-3000:] for a in agents)

    lines = events(agents)
    resumes = [i for i, e in enumerate(lines) if e["event"] == "resume"]
    assert len(resumes) == 1, [e["event"] for e in lines]
    resume = lines[resumes[0]]
    before = lines[: resumes[0]]
    checkpointed = max(e["step"] for e in before if e["event"] == "checkpoint")
    reached = max(e["step"] for e in before if e["event"] == "progress")
    assert resume["step"] >= checkpointed >= 2 * every
    assert resume["checkpoint"] == {
        "step": resume["step"],
        "path": f"checkpoints/step-{resume['step']:08d}",
        "uri": None,
    }
    assert 0 <= reached - resume["step"] <= every  # steps redone
    after = lines[resumes[0] + 1 :]
    assert [e["step"] for e in after if e["event"] == "progress"][0] == resume["step"] + 1
    done = lines[-1]
    assert done["event"] == "done" and done["step"] == 90
    assert done["artifact"]["metrics"]["resumedFromStep"] == resume["step"]
    assert done["evalValue"] > 85


def test_a_job_that_comes_back_with_fewer_ranks_resumes_its_sharded_state(tmp_path):
    """Elastic membership change: fsdp on 2 ranks stops at step 30; the job comes back on 1 rank
    (here: with a larger maxSteps, so that there is more to do) and continues from that checkpoint.
    maxSteps counts steps of the 2 ranks the run started on: the lone rank trains what 60 of those
    would have, in steps half their size."""
    output = tmp_path / "out"
    agents = launch_job(tmp_path, write_config(tmp_path, digits_job("fsdp", maxSteps=30)), output, nnodes=1, nproc=2)
    assert wait_all(agents, timeout=120) == [0], agents[0].stderr()[-3000:]
    (tmp_path / "again").mkdir()
    config = write_config(tmp_path / "again", digits_job("fsdp", maxSteps=60))
    agents = launch_job(tmp_path / "again", config, output, nnodes=1, nproc=1)
    assert wait_all(agents, timeout=120) == [0], agents[0].stderr()[-3000:]
    lines = events(agents)
    resume = next(e for e in lines if e["event"] == "resume")
    assert resume["step"] == 30
    # 60 steps on 2 ranks (23 steps of 64 samples an epoch) are 2 epochs and 896 samples of a third.
    # Step 30 is 448 samples into epoch 2: the 990 samples left of it take 31 steps of 32 on a lone
    # rank, the 896 of epoch 3 28 more.
    progress = [e for e in lines if e["event"] == "progress"]
    assert progress[0]["step"] == 35 and progress[-1]["step"] == 30 + 31 + 28 and progress[0]["epoch"] == 2
    sidecar = json.loads((output / contract.CHECKPOINT_SUBDIR / "step-00000089" / "state.json").read_text())
    assert (sidecar["epoch"], sidecar["epochPosition"], sidecar["worldSize"], sidecar["firstWorldSize"]) == (
        2,
        896,
        1,
        2,
    )
    done = lines[-1]
    assert done["event"] == "done" and (done["epoch"], done["totalEpochs"]) == (3, 3)
    assert done["artifact"]["metrics"]["samplesSeen"] == 2 * 1438 + 896
    assert done["artifact"]["metrics"]["worldSize"] == 1
    assert done["evalValue"] > 85


def test_an_epochs_job_resumed_on_fewer_ranks_trains_what_was_left_on_the_same_schedule(tmp_path):
    """Elastic membership change in a job bounded by epochs: 3 epochs on 2 ranks, killed after the
    checkpoint that ends epoch 1, resumed on 1 rank. The resumed run trains exactly the samples
    still due, reports epoch 3 of 3 at the end, and its learning rate follows an uninterrupted
    run's at every point of training."""
    seen = tmp_path / "seen"
    seen.mkdir()
    resource = trainjob(
        "elastic-epochs",
        model={"factory": "tests.worker.factories:slow_mlp", "args": {"hidden": [32], "delay": 0.03}},
        dataset={"factory": "tests.worker.factories:recorded_digits", "args": {"record": str(seen)}},
        hyperparameters={
            "epochs": 3,
            "batchSize": 32,
            "learningRate": 0.003,
            "lrSchedule": "cosine",
            "warmupSteps": 5,
            "logEverySteps": 1,
            "seed": 3,
        },
        checkpoint={"everySteps": 23, "keep": 1},
    )
    size = len(digits.load(0.2, 3).train)
    epoch_on_two, epoch_on_one = math.ceil(size / 2 / 32), math.ceil(size / 32)  # 23 and 45 steps

    def run(name: str, nproc: int, output, stop_after_step: int | None = None) -> list[dict]:
        (tmp_path / name).mkdir()
        agents = launch_job(tmp_path / name, write_config(tmp_path / name, resource), output, nnodes=1, nproc=nproc)
        try:
            if stop_after_step is None:
                assert wait_all(agents, timeout=120) == [0], agents[0].stderr()[-3000:]
            else:
                wait_for_event(
                    agents, lambda e: e.get("event") == "checkpoint" and e["step"] == stop_after_step, timeout=90
                )
                for pid in worker_ranks(agents[0]).values():  # torchrun starts them in sessions of their own
                    os.kill(pid, signal.SIGKILL)
        finally:
            stop(agents)
        return events(agents)

    run("straight", 2, tmp_path / "straight-out")
    output = tmp_path / "out"
    run("stopped", 2, output, stop_after_step=epoch_on_two)
    for record in seen.iterdir():
        record.unlink()
    lines = run("resumed", 1, output)

    assert next(e for e in lines if e["event"] == "resume")["step"] == epoch_on_two
    assert [e["epoch"] for e in lines if e["epoch"] is not None and e["epoch"] > e["totalEpochs"]] == []
    assert {e["totalSteps"] for e in lines} == {epoch_on_two + 2 * epoch_on_one}
    done = lines[-1]
    assert (done["event"], done["epoch"], done["totalEpochs"]) == ("done", 3, 3)
    assert done["step"] == done["totalSteps"]
    fetched = Counter(int(i) for record in seen.iterdir() for i in record.read_text().split())
    assert fetched == Counter({i: 2 for i in range(size)})  # epochs 2 and 3, each sample once in each
    straight_metrics = json.loads(
        (tmp_path / "straight-out" / contract.ARTIFACT_SUBDIR / contract.METRICS_FILE).read_text()
    )
    assert done["artifact"]["metrics"]["samplesSeen"] == straight_metrics["samplesSeen"] == 3 * size

    def rates(out) -> list[tuple[int, float]]:
        """(samples seen when a step began, its learning rate) of every step, from the final checkpoint."""
        final = sorted((out / contract.CHECKPOINT_SUBDIR).iterdir())[-1]
        return [tuple(pair) for pair in json.loads((final / "state.json").read_text())["history"]["learningRate"]]

    straight = dict(rates(tmp_path / "straight-out"))
    resumed = rates(output)
    assert len(resumed) == done["step"]
    points = sorted(straight)
    matched = 0
    for samples, rate in resumed:
        if samples in straight:
            assert rate == pytest.approx(straight[samples], rel=1e-9), samples
            matched += 1
        else:  # a point the two-rank run stepped over: between its neighbours on the cosine
            assert rate == pytest.approx(np.interp(samples, points, [straight[p] for p in points]), abs=1e-6), samples
    assert matched > len(resumed) / 2


def v1_checkpoint(checkpoints) -> None:
    """A checkpoint as the lmaas before format v2 wrote it (its sidecar: epochStep, no epoch position)."""
    (checkpoints / "step-00000020").mkdir(parents=True)
    (checkpoints / "step-00000020" / "state.json").write_text(
        json.dumps(
            {
                "format": "lmaas.checkpoint/v1",
                "epoch": 0,
                "epochStep": 20,
                "worldSize": 2,
                "batchSize": 32,
                "gradientAccumulationSteps": 1,
                "step": 20,
                "history": {"train": [], "eval": []},
            }
        )
    )


def unreadable_checkpoint(checkpoints) -> None:
    """A checkpoint of this format whose weights are not safetensors."""
    v1_checkpoint(checkpoints)
    state = checkpoints / "step-00000020" / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "format": CHECKPOINT_FORMAT}))
    for name in ("model.safetensors", "optimizer.safetensors"):
        (checkpoints / "step-00000020" / name).write_bytes(b"not safetensors")


OTHER_VERSION = (
    "configuration error: spec.checkpoint.resume: the checkpoint step-00000020 was written by another version"
)


@pytest.mark.parametrize(
    "checkpoint,pod_status,rank_errors",
    [
        (v1_checkpoint, contract.EXIT_CONFIG_ERROR, [OTHER_VERSION, OTHER_VERSION]),
        (
            unreadable_checkpoint,
            1,
            [
                "training failed: SafetensorError",
                "training failed: RuntimeError: rank 0 could not read the checkpoint to resume from: SafetensorError",
            ],
        ),
    ],
)
def test_a_checkpoint_rank_0_cannot_read_fails_every_rank_at_once(tmp_path, checkpoint, pod_status, rank_errors):
    """Rank 0 alone reads checkpoints: when it cannot, every rank fails with the reason (none waits for
    rank 0 in a collective), and a checkpoint of another lmaas version is a configuration error (the pod
    exits 78, so the Job fails instead of restarting into the same error)."""
    output = tmp_path / "out"
    checkpoint(output / contract.CHECKPOINT_SUBDIR)
    config = write_config(tmp_path, digits_job("ddp"))
    worker = [
        "--standalone",
        "--nproc-per-node",
        "2",
        "--monitor-interval",
        "0.2",
        "--no-python",
        "lmaas",
        "train",
        "--config",
        str(config),
        "--output-dir",
        str(output),
    ]
    launcher = f"import sys; from lmaas_worker.train.launch import run_agent; sys.exit(run_agent({worker!r}))"
    pod = subprocess.run(
        [sys.executable, "-c", launcher], env=worker_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert pod.returncode == pod_status, pod.stderr[-3000:]
    for rank, rank_error in enumerate(rank_errors):
        assert any(f"[rank {rank}]" in line and rank_error in line for line in pod.stderr.splitlines()), pod.stderr[
            -3000:
        ]
    if pod_status == contract.EXIT_CONFIG_ERROR:
        error = json.loads((tmp_path / "termination-log").read_text())
        assert error["event"] == "error" and "'lmaas.checkpoint/v1'" in error["message"]
        assert "checkpoint.resume to false" in error["message"]
