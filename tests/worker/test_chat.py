"""Supervised fine-tuning on conversations under real torchrun: a tiny Llama from a config trained
on the builtin shakespeare-chat across two agents, the loss on the assistant's tokens alone, the
tokens cached once per node. Nothing is mocked."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer

from lmaas_api import contract
from lmaas_worker.data import IGNORE_INDEX
from lmaas_worker.data.cache import KEY_FILE, TokenCache
from lmaas_worker.data.tokenizer import CHAT_TEMPLATE, TURN_END

from .launch import events, launch_job, trainjob, wait_all, write_config

pytestmark = pytest.mark.slow

LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
}


def test_two_agents_fine_tune_on_conversations_learning_only_the_assistants_replies(tmp_path):
    resource = trainjob(
        "chat",
        model={"hf": {"config": LLAMA}},
        tokenizer={"train": {"vocabSize": 512}},
        dataset={"builtin": "shakespeare-chat", "sequenceLength": 96, "validationFraction": 0.1},
        strategy="ddp",
        hyperparameters={"maxSteps": 40, "batchSize": 8, "learningRate": 0.003, "seed": 3, "logEverySteps": 5},
        checkpoint={"everySteps": 1000},
    )
    output, cache = tmp_path / "out", tmp_path / "data-cache"  # the cache worker_env gives every agent
    agents = launch_job(tmp_path, write_config(tmp_path, resource), output, 2, 1)
    assert wait_all(agents, timeout=240) == [0, 0], "\n".join(a.stderr()[-3000:] for a in agents)
    lines = events(agents)
    losses = [e["loss"] for e in lines if e["event"] == "progress"]
    assert losses[-1] < losses[0] - 1.0  # from ln(512) = 6.2 towards lines of verse
    done = lines[-1]
    assert done["event"] == "done" and done["step"] == 40 and done["evalMetric"] == "perplexity"
    metrics = done["artifact"]["metrics"]
    assert metrics["perplexity"] < metrics["unigramPerplexity"]  # on the held-out replies alone
    assert metrics["sample"]["prompt"].endswith("<|im_start|>assistant\n")  # a conversation up to its reply

    # one cache entry, built by each agent's local rank 0 (both on this machine) and mapped by every rank
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    key = json.loads((entry / KEY_FILE).read_text())
    assert (key["format"], key["sequenceLength"], key["validationFraction"]) == ("chat", 96, 0.1)
    arrays = TokenCache(cache).load(entry.name)
    artifact = output / contract.ARTIFACT_SUBDIR
    tokenizer = AutoTokenizer.from_pretrained(artifact)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    inputs, targets = arrays["train-inputs"], arrays["train-targets"]
    assert metrics["samplesSeen"] == 40 * 8 * 2 and len(inputs) > 800
    padded = (inputs[:, -1] == tokenizer.pad_token_id).nonzero().flatten().tolist()  # conversations not cut
    assert len(padded) > 0.8 * len(inputs)
    for row in padded[::50]:  # what carries a loss is what the assistant says, turn ends included
        said = tokenizer.decode(targets[row][targets[row] != IGNORE_INDEX])
        rendered = tokenizer.decode(inputs[row][inputs[row] != tokenizer.pad_token_id])
        replies = [r.split(TURN_END)[0] for r in rendered.split("<|im_start|>assistant\n")[1:]]
        assert said == "".join(f"{r}{TURN_END}" for r in replies) and said.count(TURN_END) == len(replies) >= 1
    assert int((targets != IGNORE_INDEX).sum()) < 0.5 * int((inputs != tokenizer.pad_token_id).sum())
    counted = targets != IGNORE_INDEX
    assert torch.equal(targets[:, :-1][counted[:, :-1]], inputs[:, 1:][counted[:, :-1]])
