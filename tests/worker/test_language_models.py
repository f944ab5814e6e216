"""`lmaas train` of Hugging Face causal language models under real torchrun on CPU (gloo), with real
transformers and tiny models built from configs: ddp across two agents for two families, fsdp across
two processes, and the bad configurations refused before any rendezvous. Nothing is mocked."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from transformers import AutoTokenizer

from lmaas_api import contract
from lmaas_worker.artifacts import load
from lmaas_worker.data.cache import TokenCache
from lmaas_worker.data.language import language_data
from lmaas_worker.data.sources import read_split
from lmaas_worker.train.launch import launch_training

from .launch import events, launch_job, trainjob, wait_all, worker_env, write_config

pytestmark = pytest.mark.slow

FAMILIES = {
    "llama": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
    },
    "gpt2": {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64},
}

GENERATE = """
import json, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
artifact, prompt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(artifact)
model = AutoModelForCausalLM.from_pretrained(artifact, use_safetensors=True)
ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
out = model.generate(**ids, max_new_tokens=count, do_sample=False)
print(json.dumps(tokenizer.decode(out[0, ids["input_ids"].shape[1]:])))
"""


def language_model_job(family: str, strategy: str, **spec) -> dict:
    return trainjob(
        f"{family}-{strategy}",
        model={"hf": {"config": FAMILIES[family]}},
        tokenizer={"train": {"vocabSize": 512}},
        dataset={"builtin": "shakespeare", "sequenceLength": 32, "validationFraction": 0.1},
        strategy=strategy,
        hyperparameters={"epochs": 2, "batchSize": 8, "learningRate": 0.003, "seed": 5, "logEverySteps": 5},
        checkpoint={"everySteps": 1000},
        **spec,
    )


def train(tmp_path, resource: dict, nnodes: int, nproc: int) -> tuple[list[dict], object]:
    output = tmp_path / "out"
    agents = launch_job(tmp_path, write_config(tmp_path, resource), output, nnodes, nproc)
    assert wait_all(agents, timeout=150) == [0] * nnodes, "\n".join(a.stderr()[-3000:] for a in agents)
    return events(agents), output / contract.ARTIFACT_SUBDIR


def generated_elsewhere(tmp_path, artifact, prompt: str, count: int) -> str:
    """The greedy continuation of `prompt` by the artifact, loaded by transformers in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", GENERATE, str(artifact), prompt, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
        env=worker_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_trained_and_reproduced(tmp_path, lines: list[dict], artifact, world_size: int, strategy: str) -> dict:
    losses = [e["loss"] for e in lines if e["event"] == "progress"]
    assert losses[-1] < losses[0] - 1.0  # from ln(512) = 6.2 towards what the text allows
    done = lines[-1]
    assert done["event"] == "done" and done["step"] == done["totalSteps"] and done["evalMetric"] == "perplexity"
    metrics = done["artifact"]["metrics"]
    assert (metrics["worldSize"], metrics["strategy"]) == (world_size, strategy)
    assert metrics["perplexity"] == done["evalValue"] and metrics["evalLoss"] == pytest.approx(
        math.log(done["evalValue"])
    )
    files = {p.name for p in artifact.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "model.json",
        "metrics.json",
    } <= files
    # the weights in at least as many files as ranks (each rank wrote whole files), with their index
    weights = set(json.loads((artifact / "model.safetensors.index.json").read_text())["weight_map"].values())
    assert len(weights) >= world_size
    assert weights == {f"model-{i:05d}-of-{len(weights):05d}.safetensors" for i in range(1, len(weights) + 1)}
    assert weights <= files and not any(artifact.glob("shard-*")) and not (artifact / "sharded").exists()
    sample = metrics["sample"]
    assert sample["greedy"] and generated_elsewhere(tmp_path, artifact, sample["prompt"], 24) == sample["greedy"]
    return metrics


def held_out_perplexity(artifact, cache) -> float:
    """The held-out perplexity of the artifact as lmaas loads it, on the split its card records."""
    module, card = load(artifact)
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    data = language_data(
        read_split(card.dataset, None), tokenizer, card.input.shape[0], TokenCache(cache), 0, "spec.model.hf.uri"
    )
    inputs, targets = data.val.tensors
    with torch.no_grad():
        logits = module(inputs)
    return math.exp(float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())))


@pytest.mark.parametrize("family", FAMILIES)
def test_two_agents_train_a_family_with_ddp_and_the_artifact_generates_the_same_anywhere(tmp_path, family):
    lines, artifact = train(tmp_path, language_model_job(family, "ddp"), nnodes=2, nproc=1)
    metrics = assert_trained_and_reproduced(tmp_path, lines, artifact, 2, "ddp")
    assert held_out_perplexity(artifact, tmp_path / "cache") == pytest.approx(metrics["perplexity"], rel=1e-4)
    card = json.loads((artifact / contract.MODEL_CARD_FILE).read_text())
    assert card["layout"] == "huggingface"
    assert card["model"]["hf"]["config"] == {
        **FAMILIES[family],
        "vocab_size": 512,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 1,
    }  # as the tokenizer set them
    assert card["input"]["shape"] == [32] and card["dataset"]["builtin"] == "shakespeare"
    weight_map = json.loads((artifact / "model.safetensors.index.json").read_text())["weight_map"]
    assert ("lm_head.weight" in weight_map) == (family == "llama")  # gpt2's head is its embeddings: stored once
    progress = [line for line in lines if line["event"] == "progress"]
    assert progress and all(
        line["tokensPerSecond"] == pytest.approx(32 * line["samplesPerSecond"])
        and line["learningRate"] > 0
        and line["etaSeconds"] >= 0
        for line in progress
    )
    assert progress[-1]["etaSeconds"] < progress[0]["etaSeconds"]
    assert metrics["tokensPerSecond"] == pytest.approx(32 * metrics["samplesPerSecond"])


def test_fsdp_on_two_processes_trains_a_model_sharded_per_decoder_layer(tmp_path):
    lines, artifact = train(tmp_path, language_model_job("llama", "fsdp"), nnodes=1, nproc=2)
    metrics = assert_trained_and_reproduced(tmp_path, lines, artifact, 2, "fsdp")
    # each rank holds half of the parameters and of the optimizer state, give or take uneven shards
    total = sum(metrics["modelStateBytesPerRank"])
    assert all(0.4 * total < held < 0.6 * total for held in metrics["modelStateBytesPerRank"])


BAD_INPUT = {
    "unknown model type": ({"model_type": "no-such-model"}, {}, "spec.model.hf.config.model_type"),
    "config transformers rejects": ({"hidden_size": 30}, {}, "spec.model.hf.config"),
    "blocks longer than the model's positions": ({}, {"sequenceLength": 128}, "spec.dataset.sequenceLength"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_a_bad_language_model_spec_exits_78_before_any_rendezvous(tmp_path, termination_log, case):
    config_change, dataset_change, field = BAD_INPUT[case]
    resource = language_model_job("llama", "ddp")
    resource["spec"]["model"]["hf"]["config"] = {**FAMILIES["llama"], **config_change}
    resource["spec"]["dataset"].update(dataset_change)
    # no agent is started: the launcher refuses the spec itself (no PET_ variables are set for one)
    assert launch_training(write_config(tmp_path, resource), tmp_path / "out") == contract.EXIT_CONFIG_ERROR
    error = json.loads(termination_log.read_text())
    assert error["event"] == "error" and error["message"].startswith(f"ConfigError: {field}: ")
