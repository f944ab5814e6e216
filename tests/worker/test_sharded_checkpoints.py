"""Checkpoints of Hugging Face language models under real torchrun on CPU (gloo), written and read
with torch.distributed.checkpoint: every rank writes its own part of the model and optimizer state
and nothing in them is a pickle; a rank killed after a checkpoint resumes from it and the run ends
with the weights of an unbroken run; a run that comes back on another number of processes
reshards the checkpoint and goes on from its step. Nothing is mocked."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from lmaas_api import contract
from lmaas_worker.artifacts.files import refuse_pickles

from .launch import events, launch_job, stop, trainjob, wait_all, wait_for_event, worker_ranks, write_config
from .test_language_models import FAMILIES

pytestmark = pytest.mark.slow


def language_model_job(max_steps: int, every: int, strategy: str = "fsdp", family: str = "llama") -> dict:
    return trainjob(
        f"{family}-{strategy}",
        model={"hf": {"config": FAMILIES[family]}},
        tokenizer={"train": {"vocabSize": 512}},
        dataset={"builtin": "shakespeare", "sequenceLength": 32, "validationFraction": 0.1},
        strategy=strategy,
        hyperparameters={
            "epochs": 20,
            "maxSteps": max_steps,
            "batchSize": 8,
            "learningRate": 0.003,
            "seed": 5,
            "logEverySteps": 5,
        },
        checkpoint={"everySteps": every, "keep": 5},
    )


def train(directory, resource: dict, output, nproc: int) -> list[dict]:
    directory.mkdir(exist_ok=True)
    agents = launch_job(directory, write_config(directory, resource), output, 1, nproc)
    assert wait_all(agents, timeout=150) == [0], agents[0].stderr()[-3000:]
    return events(agents)


def artifact_weights(output) -> dict[str, torch.Tensor]:
    artifact = output / contract.ARTIFACT_SUBDIR
    files = set(json.loads((artifact / "model.safetensors.index.json").read_text())["weight_map"].values())
    return {name: tensor for file in files for name, tensor in load_file(artifact / file).items()}


def pieces(path) -> dict[str, dict[str, list[int]]]:
    """{file: {tensor name: shape}} of a sharded checkpoint's safetensors files."""
    found = {}
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(file, framework="pt") as opened:
            found[file.name] = {name: opened.get_slice(name).get_shape() for name in opened.keys()}
    return found


def test_fsdp_on_two_processes_writes_each_rank_s_part_and_no_pickle(tmp_path):
    output = tmp_path / "out"
    train(tmp_path / "run", language_model_job(max_steps=10, every=10), output, nproc=2)
    checkpoint = output / contract.CHECKPOINT_SUBDIR / "step-00000010"
    refuse_pickles(checkpoint)  # no .metadata or any other file that only unpickling reads
    files = pieces(checkpoint)
    assert set(files) == {
        "shard-00001-model-00001-of-00001.safetensors",  # rank 0's
        "shard-00002-model-00001-of-00001.safetensors",  # rank 1's
    }
    assert {p.name for p in checkpoint.iterdir()} == {*files, "state.json"}
    model = [{name: shape for name, shape in held.items() if name.startswith("model.")} for held in files.values()]
    # each rank holds a piece of every parameter (fsdp shards them on their first dimension), none the whole
    # two decoder layers of 9, the embeddings, the final norm and the output head
    assert model[0].keys() == model[1].keys() and len(model[0]) == 2 * 9 + 3
    for name, shape in model[0].items():
        other = model[1][name]
        assert shape[1:] == other[1:] and 0 < shape[0] < shape[0] + other[0], name
    optimizer = [{name for name in held if name.startswith("optimizer.")} for held in files.values()]
    assert any(name.endswith("::exp_avg") for name in optimizer[0] & optimizer[1])
    sidecar = json.loads((checkpoint / "state.json").read_text())
    assert sidecar["format"] == "lmaas.checkpoint.sharded/v1" and sidecar["step"] == 10
    assert sidecar["optimizer"]["paramGroups"][0]["lr"] > 0  # what is not a tensor is JSON


@pytest.mark.parametrize("strategy,family", [("fsdp", "llama"), ("ddp", "gpt2")])  # gpt2 ties its head
def test_a_killed_rank_resumes_from_the_sharded_checkpoint_and_ends_with_the_unbroken_run_s_weights(
    tmp_path, strategy, family
):
    resource = language_model_job(max_steps=150, every=25, strategy=strategy, family=family)
    train(tmp_path / "unbroken", resource, tmp_path / "unbroken-out", nproc=2)
    unbroken = artifact_weights(tmp_path / "unbroken-out")

    (tmp_path / "killed").mkdir()
    output = tmp_path / "killed-out"
    agents = launch_job(tmp_path / "killed", write_config(tmp_path / "killed", resource), output, 1, 2, max_restarts=1)
    try:
        wait_for_event(agents, lambda e: e.get("event") == "checkpoint" and e["step"] >= 25, timeout=120)
        ranks = worker_ranks(agents[0])
        os.kill(ranks[max(ranks)], signal.SIGKILL)
        assert wait_all(agents, timeout=150) == [0], agents[0].stderr()[-3000:]
    finally:
        stop(agents)
    lines = events(agents)
    (resume,) = [e for e in lines if e["event"] == "resume"]
    assert resume["step"] >= 25 and resume["step"] % 25 == 0 and lines[-1]["step"] == 150
    assert lines[-1]["artifact"]["metrics"]["resumedFromStep"] == resume["step"]
    resumed = artifact_weights(output)
    assert resumed.keys() == unbroken.keys()
    assert all(torch.allclose(resumed[name], unbroken[name], rtol=0, atol=1e-5) for name in unbroken)


def test_a_run_back_on_one_process_reshards_the_checkpoint_and_goes_on_from_its_step(tmp_path):
    output = tmp_path / "out"
    before = train(tmp_path / "two", language_model_job(max_steps=20, every=10), output, nproc=2)
    after = train(tmp_path / "one", language_model_job(max_steps=40, every=10), output, nproc=1)
    resume = next(e for e in after if e["event"] == "resume")
    assert resume["step"] == 20 and resume["checkpoint"]["path"] == "checkpoints/step-00000020"
    # maxSteps counts steps of the two processes the run started on: one process takes twice as many
    progress = [e for e in after if e["event"] == "progress"]
    assert progress[0]["step"] == 25 and after[-1]["step"] == 20 + 2 * 20
    # the weights and the optimizer state came back: the loss goes on from where it was, far below the start
    first, last = [e["loss"] for e in before if e["event"] == "progress"][0], before[-1]["loss"]
    assert first - last > 0.5 and abs(progress[0]["loss"] - last) < 0.2, (first, last, progress[0]["loss"])
    sidecar = json.loads((output / contract.CHECKPOINT_SUBDIR / "step-00000060" / "state.json").read_text())
    assert (sidecar["worldSize"], sidecar["firstWorldSize"]) == (1, 2)
    assert set(pieces(output / contract.CHECKPOINT_SUBDIR / "step-00000060")) == {
        "shard-00001-model-00001-of-00001.safetensors"
    }
