"""lmaas_worker.train.checkpoint: atomic safetensors checkpoints, the newest K kept."""

import json

import pytest
import torch

from lmaas_api.errors import ConfigError
from lmaas_worker.train.checkpoint import (
    CheckpointStore,
    flatten_optimizer_state,
    unflatten_optimizer_state,
)


def model_state(value: float = 1.0):
    return {"layer.weight": torch.full((3, 2), value), "layer.bias": torch.zeros(3)}


def optimizer_state():
    return {
        "state": {
            "layer.weight": {"step": torch.tensor(4.0), "exp_avg": torch.ones(3, 2), "exp_avg_sq": torch.ones(3, 2)},
            "layer.bias": {"step": torch.tensor(4.0), "momentum_buffer": None},
        },
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": ["layer.weight", "layer.bias"]}],
    }


def test_a_checkpoint_round_trips_through_safetensors_and_json(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    written = store.write(10, model_state(2.0), optimizer_state(), {"epoch": 1, "epochStep": 3})
    assert written.path.name == "step-00000010"
    assert sorted(p.name for p in written.path.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (written.path / name).read_bytes()[:1] != b"\x80"  # not a pickle
    model, optimizer, sidecar = store.read(store.latest())
    assert torch.equal(model["layer.weight"], torch.full((3, 2), 2.0))
    assert torch.equal(optimizer["state"]["layer.weight"]["exp_avg"], torch.ones(3, 2))
    assert optimizer["state"]["layer.bias"]["momentum_buffer"] is None
    assert optimizer["param_groups"][0]["betas"] == (0.9, 0.999)
    assert optimizer["param_groups"][0]["params"] == ["layer.weight", "layer.bias"]
    assert sidecar["step"] == 10 and sidecar["epochStep"] == 3


def test_only_the_newest_k_are_kept(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for step in (5, 10, 15, 20):
        store.write(step, model_state(), optimizer_state(), {})
    assert [c.step for c in store.list()] == [15, 20]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000015", "step-00000020"]


def test_a_write_that_dies_halfway_leaves_no_checkpoint_behind(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    store.write(10, model_state(), optimizer_state(), {})
    broken = optimizer_state()
    broken["state"]["layer.weight"]["exp_avg"] = torch.empty(3, 2, device="meta")  # no values to copy out
    with pytest.raises(RuntimeError):  # after the model's file, midway through the write
        store.write(20, model_state(), broken, {})
    assert store.latest().step == 10
    assert any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    (tmp_path / "step-00000030").mkdir()  # a directory without its sidecar is not a checkpoint either
    assert store.latest().step == 10
    store.remove_incomplete()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000010", "step-00000030"]


def test_tied_parameters_are_written_each_under_its_name(tmp_path):
    """A language model's embeddings and output head are one tensor under two names, which safetensors
    would refuse to write as such."""
    store = CheckpointStore(tmp_path, keep=1)
    tied = torch.arange(6.0).view(3, 2)
    store.write(10, {"embed.weight": tied, "head.weight": tied, "layer.bias": torch.zeros(3)}, optimizer_state(), {})
    model, _, _ = store.read(store.latest())
    assert torch.equal(model["embed.weight"], tied) and torch.equal(model["head.weight"], tied)


def test_rewriting_a_step_replaces_it(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    store.write(10, model_state(1.0), optimizer_state(), {"epoch": 0})
    store.write(10, model_state(3.0), optimizer_state(), {"epoch": 1})
    model, _, sidecar = store.read(store.latest())
    assert torch.equal(model["layer.weight"], torch.full((3, 2), 3.0)) and sidecar["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000010"]


def test_a_real_optimizer_state_survives_flattening():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {
        "state": {name: optimizer.state[p] for name, p in model.named_parameters()},
        "param_groups": [
            {**{k: v for k, v in optimizer.param_groups[0].items() if k != "params"}, "params": ["weight", "bias"]}
        ],
    }
    tensors, rest = flatten_optimizer_state(state)
    json.dumps(rest)  # everything that is not a tensor is JSON
    back = unflatten_optimizer_state(tensors, json.loads(json.dumps(rest)))
    for name in ("weight", "bias"):
        for key, value in state["state"][name].items():
            assert torch.equal(back["state"][name][key], value)
    assert back["param_groups"][0]["betas"] == optimizer.param_groups[0]["betas"]


def test_a_checkpoint_of_another_format_is_a_configuration_error_naming_resume(tmp_path):
    (tmp_path / "step-00000020").mkdir()
    (tmp_path / "step-00000020" / "state.json").write_text(
        json.dumps({"format": "lmaas.checkpoint/v1", "epoch": 0, "epochStep": 20, "worldSize": 2, "step": 20})
    )
    store = CheckpointStore(tmp_path, keep=2)
    with pytest.raises(ConfigError) as raised:
        store.read(store.latest())
    assert raised.value.field == "spec.checkpoint.resume"
    assert "step-00000020 was written by another version of lmaas (format 'lmaas.checkpoint/v1'" in str(raised.value)
