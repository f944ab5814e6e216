"""`lmaas train` with LoRA adapters (`spec.peft`) under real torchrun on CPU (gloo), with real
transformers and peft: a tiny llama built from a config and saved as a base folder is fine-tuned
from `spec.model.hf.uri` under fsdp and ddp across two agents (and, in one process, a llama built
from a config). Its artifact is the adapter peft writes, which peft loads onto the base in a fresh
process; the base never changes; checkpoints hold the adapters alone, and a run resumed from one
ends as an unbroken run does. Nothing is mocked."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from lmaas_api import contract
from lmaas_api.spec import TrainJobDataset
from lmaas_worker.data import shakespeare, text
from lmaas_worker.data.sources import read_split
from lmaas_worker.data.tokenizer import train_tokenizer
from lmaas_worker.train.launch import launch_training

from .launch import events, launch_job, run_single, trainjob, wait_all, worker_env, write_config

pytestmark = pytest.mark.slow

BASE_URI = "pvc://models/llama-base"
BASE = {
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}
ATTENTION = ["k_proj", "o_proj", "q_proj", "v_proj"]
DATASET = {"builtin": "shakespeare", "sequenceLength": 32, "validationFraction": 0.1}
ADAPTER_WEIGHTS = "adapter_model.safetensors"

LOAD_ONTO_BASE_AND_GENERATE = """
import json, sys
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base, adapter, prompt, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tokenizer = AutoTokenizer.from_pretrained(adapter)
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, use_safetensors=True), adapter)
ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
out = model.generate(**ids, max_new_tokens=count, do_sample=False)
print(json.dumps(tokenizer.decode(out[0, ids["input_ids"].shape[1]:])))
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A randomly initialised llama with a tokenizer trained on the text: a Hugging Face folder."""
    folder = tmp_path_factory.mktemp("llama-base")
    tokenizer = train_tokenizer(shakespeare.text(), 512)
    config = AutoConfig.for_model(
        **BASE,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def lora_job(strategy: str, lora: dict, merge: bool = False, **spec) -> dict:
    return trainjob(
        f"lora-{strategy}",
        model={"hf": {"uri": BASE_URI}},
        peft={"lora": lora, "mergeAdapter": merge},
        dataset=DATASET,
        strategy=strategy,
        hyperparameters={"epochs": 1, "batchSize": 8, "learningRate": 0.05, "seed": 5, "logEverySteps": 5},
        **spec,
    )


def train(tmp_path, base: Path, resource: dict, output: Path) -> list[dict]:
    config = write_config(tmp_path, resource)
    agents = launch_job(tmp_path, config, output, 2, 1, **{contract.INPUT_DIR_ENV: str(base)})
    assert wait_all(agents, timeout=150) == [0, 0], "\n".join(a.stderr()[-3000:] for a in agents)
    return events(agents)


def generated_on_the_base(tmp_path, base: Path, adapter: Path, prompt: str, count: int) -> str:
    """The greedy continuation of `prompt` by the adapter on its base, loaded by peft in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ONTO_BASE_AND_GENERATE, str(base), str(adapter), prompt, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
        env=worker_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def held_out_perplexity(lm, tokenizer) -> float:
    """The perplexity of a transformers model on the held-out blocks the jobs evaluate on."""
    dataset = TrainJobDataset.model_validate(DATASET)
    held_out = read_split(dataset, None).held_out
    inputs, targets = text.packed(text.token_ids(held_out, tokenizer), dataset.sequence_length).tensors
    with torch.no_grad():
        logits = lm(input_ids=inputs).logits
    return math.exp(float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())))


def adapted_weight(name: str) -> str:
    """The base weight an adapter tensor of peft's file belongs to ("...q_proj.lora_A.weight" -> "...q_proj.weight")."""
    return name.removeprefix("base_model.model.").rsplit(".lora_", 1)[0] + ".weight"


def test_fsdp_on_two_agents_trains_only_the_adapters_and_writes_them_with_the_merged_model(tmp_path, base):
    resource = lora_job("fsdp", {"r": 4, "alpha": 8, "targetModules": ATTENTION}, merge=True)
    done = train(tmp_path, base, resource, tmp_path / "out")[-1]
    artifact = tmp_path / "out" / contract.ARTIFACT_SUBDIR
    assert done["event"] == "done" and done["artifact"]["sizeBytes"] == (artifact / ADAPTER_WEIGHTS).stat().st_size
    names = {p.name for p in artifact.iterdir()}
    assert {"adapter_config.json", ADAPTER_WEIGHTS, "tokenizer.json", "model.json", "merged"} <= names
    assert "model.safetensors" not in names and "base" not in names  # the base is where the uri says

    card = json.loads((artifact / contract.MODEL_CARD_FILE).read_text())
    assert card["layout"] == "peft" and card["model"]["hf"]["uri"] == BASE_URI
    assert card["adapter"] | {"trainableParameters": None} == {
        "method": "lora",
        "r": 4,
        "alpha": 8,
        "dropout": 0.0,
        "targetModules": ATTENTION,
        "trainableParameters": None,
        "baseUri": BASE_URI,
        "basePath": None,
        "mergedPath": "merged",
    }
    assert json.loads((artifact / "adapter_config.json").read_text())["base_model_name_or_path"] == BASE_URI

    # the adapters alone, a small fraction of the base; each trained (B starts at zero)
    adapters = load_file(artifact / ADAPTER_WEIGHTS)
    before = load_file(base / "model.safetensors")
    assert all(".lora_A." in name or ".lora_B." in name for name in adapters)
    assert {adapted_weight(name) for name in adapters} < set(before)
    assert (artifact / ADAPTER_WEIGHTS).stat().st_size < 0.02 * (base / "model.safetensors").stat().st_size
    assert card["adapter"]["trainableParameters"] == sum(t.numel() for t in adapters.values())
    assert all(t.abs().max() > 0 for name, t in adapters.items() if ".lora_B." in name)

    # the base never changed: the merged model is the base, bit for bit, plus (alpha / r) B A where adapted
    merged = load_file(artifact / "merged" / "model.safetensors")
    assert set(merged) == set(before)
    deltas = {
        adapted_weight(a): (8 / 4) * adapters[a.replace(".lora_A.", ".lora_B.")] @ adapters[a]
        for a in adapters
        if ".lora_A." in a
    }
    for name, weight in before.items():
        if name in deltas:
            assert torch.allclose(merged[name], weight + deltas[name], rtol=0, atol=1e-6), name
        else:
            assert torch.equal(merged[name], weight), name

    # the adapters on the base do better on the held-out text than the base, as training measured;
    # merged and unmerged give the same logits; peft in a fresh process continues as training did
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    base_model = AutoModelForCausalLM.from_pretrained(base)
    before_perplexity = held_out_perplexity(base_model, tokenizer)
    unmerged = PeftModel.from_pretrained(base_model, artifact)
    assert held_out_perplexity(unmerged, tokenizer) == pytest.approx(done["evalValue"], rel=1e-4)
    assert done["evalValue"] < 0.95 * before_perplexity
    ids = torch.randint(0, 512, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        merged_logits = AutoModelForCausalLM.from_pretrained(artifact / "merged")(input_ids=ids).logits
        assert torch.allclose(unmerged(input_ids=ids).logits, merged_logits, atol=1e-5)
    sample = done["artifact"]["metrics"]["sample"]
    assert sample["greedy"]
    assert generated_on_the_base(tmp_path, base, artifact, sample["prompt"], 24) == sample["greedy"]

    # fsdp shards the frozen base as it shards a trained model: each rank holds about half
    held = done["artifact"]["metrics"]["modelStateBytesPerRank"]
    assert all(0.4 * sum(held) < h < 0.6 * sum(held) for h in held)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_agents_checkpoint_only_the_adapters_and_a_resumed_run_ends_where_an_unbroken_one_does(
    tmp_path, base, strategy
):
    resource = lora_job(strategy, {}, checkpoint={"everySteps": 15, "keep": 5})
    output = tmp_path / "out"
    lines = train(tmp_path, base, resource, output)
    done = lines[-1]
    assert done["event"] == "done" and done["totalSteps"] > 15
    artifact = output / contract.ARTIFACT_SUBDIR
    finished = load_file(artifact / ADAPTER_WEIGHTS)
    assert {p.name for p in artifact.iterdir()} >= {"adapter_config.json", ADAPTER_WEIGHTS, "model.json"}
    assert "merged" not in {p.name for p in artifact.iterdir()}

    checkpoints = sorted((output / contract.CHECKPOINT_SUBDIR).iterdir())
    held = [  # every rank's part of the model state
        name
        for part in checkpoints[0].glob("shard-*.safetensors")
        for name in load_file(part)
        if name.startswith("model.")
    ]
    assert held and all(".lora_A." in name or ".lora_B." in name for name in held)  # no frozen base weights

    # as if the run had stopped after its first checkpoint: it resumes there and ends as it did
    for later in checkpoints[1:]:
        shutil.rmtree(later)
    shutil.rmtree(artifact)
    lines = train(tmp_path, base, resource, output)
    (resumed,) = [e for e in lines if e["event"] == "resume"]
    assert resumed["step"] == 15 and lines[-1]["step"] == done["step"]
    again = load_file(artifact / ADAPTER_WEIGHTS)
    assert again.keys() == finished.keys()
    assert all(torch.allclose(again[name], finished[name], rtol=0, atol=1e-6) for name in finished)


def test_a_base_built_from_a_config_is_written_beside_its_adapter(tmp_path):
    resource = trainjob(
        "lora-from-config",
        model={"hf": {"config": BASE}},
        tokenizer={"train": {"vocabSize": 512}},
        peft={"lora": {}},
        dataset=DATASET,
        hyperparameters={"maxSteps": 4, "batchSize": 8, "learningRate": 0.05, "seed": 5},
    )
    code, lines, stderr = run_single(tmp_path, write_config(tmp_path, resource), tmp_path / "out")
    assert code == 0, stderr[-3000:]
    artifact = tmp_path / "out" / contract.ARTIFACT_SUBDIR
    card = json.loads((artifact / contract.MODEL_CARD_FILE).read_text())
    assert (card["adapter"]["baseUri"], card["adapter"]["basePath"]) == (None, "base")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (artifact / "base").iterdir()}
    sample = lines[-1]["artifact"]["metrics"]["sample"]
    assert generated_on_the_base(tmp_path, artifact / "base", artifact, sample["prompt"], 24) == sample["greedy"]


BAD_TARGETS = {
    "a name that matches no layer": (["q_proj", "no_such_layer"], "no_such_layer names no layer of the model"),
    "a module that is not a layer": (["mlp"], "is not supported"),
}


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_bad_target_modules_exit_78_before_any_rendezvous(tmp_path, base, termination_log, monkeypatch, case):
    targets, message = BAD_TARGETS[case]
    monkeypatch.setenv(contract.INPUT_DIR_ENV, str(base))
    config = write_config(tmp_path, lora_job("ddp", {"targetModules": targets}))
    # no agent is started: the launcher refuses the spec itself (no PET_ variables are set for one)
    assert launch_training(config, tmp_path / "out") == contract.EXIT_CONFIG_ERROR
    error = json.loads(termination_log.read_text())
    assert error["message"].startswith("ConfigError: spec.peft.lora.targetModules: ") and message in error["message"]
    assert "q_proj" in error["message"]  # the layers it could have named
