"""`lmaas train` without torchrun: one process, the same code paths (a world of one)."""

from __future__ import annotations

import json
import math
import os
import signal
import time

import pytest
import torch
from safetensors.torch import load_file

from lmaas_api import contract
from lmaas_api.card import Producer
from lmaas_api.spec import ArtifactCodePolicy, ModelDefinition
from lmaas_worker.artifacts import load
from lmaas_worker.train import run_training

from .launch import BIN, events, launch, run_single, trainjob, wait_for_event, worker_env, write_config

pytestmark = pytest.mark.slow


def progress_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_trains_a_cnn_with_sgd_cosine_warmup_and_accumulation_without_torchrun(tmp_path, termination_log):
    resource = trainjob(
        "digits-cnn",
        model={"builtin": "cnn", "args": {"channels": [8, 16], "hidden": 32}},
        dataset={"builtin": "digits"},
        hyperparameters={
            "epochs": 4,
            "batchSize": 16,
            "learningRate": 0.2,
            "optimizer": "sgd",
            "momentum": 0.9,
            "lrSchedule": "cosine",
            "warmupSteps": 10,
            "gradientAccumulationSteps": 2,
            "maxGradNorm": 1.0,
            "evalEverySteps": 40,
            "logEverySteps": 10,
        },
        checkpoint={"everySteps": 1000, "keep": 1},
    )
    config = write_config(tmp_path, resource, as_yaml=True)
    code, lines, stderr = run_single(tmp_path, config, tmp_path / "out", LMAAS_OUTPUT_URI="pvc://claim/jobs/cnn")
    assert code == 0, stderr
    done = lines[-1]
    # 1438 samples / 16 = 90 micro-batches = 45 optimizer steps per epoch
    assert done["event"] == "done" and done["step"] == done["totalSteps"] == 180 and done["totalEpochs"] == 4
    assert [e["step"] for e in lines if e["event"] == "eval"] == [40, 80, 120, 160, 180]
    assert done["evalValue"] > 85
    assert done["artifact"]["uri"] == "pvc://claim/jobs/cnn/artifact"
    assert done["artifact"]["metrics"]["worldSize"] == 1
    module, card = load(tmp_path / "out" / "artifact")
    assert card.model == ModelDefinition(
        builtin="cnn", factory=None, args={"channels": [8, 16], "hidden": 32, "in_features": 64, "num_classes": 10}
    )
    assert card.producer == Producer(
        kind="TrainJob", name="digits-cnn", namespace="tests", uid="uid-digits-cnn", generation=1
    )
    assert module(torch.zeros(3, 64)).shape == (3, 10)
    assert json.loads(termination_log.read_text()) == done


def test_the_same_seed_gives_the_same_model_and_another_seed_another(tmp_path, capsys):
    def train(name: str, seed: int) -> dict[str, torch.Tensor]:
        resource = trainjob(
            name,
            model={"builtin": "mlp", "args": {"hidden": [32], "dropout": 0.2}},
            dataset={"builtin": "digits"},
            hyperparameters={"epochs": 1, "maxSteps": 15, "seed": seed, "logEverySteps": 5},
        )
        (tmp_path / name).mkdir()
        assert run_training(write_config(tmp_path / name, resource), tmp_path / name / "out") == 0
        return load_file(tmp_path / name / "out" / "artifact" / contract.WEIGHTS_FILE)

    first, again, other = train("a", 3), train("b", 3), train("c", 4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_a_killed_run_resumes_where_it_stopped_and_ends_with_the_same_weights(tmp_path, capsys):
    """Kill the process after a checkpoint, start it again: it resumes, skips the batches it had
    consumed, and ends bit-for-bit where an uninterrupted run ends (dropout included)."""
    resource = trainjob(
        "resumed",
        model={"factory": "tests.worker.factories:slow_mlp", "args": {"hidden": [32], "delay": 0.03, "dropout": 0.1}},
        dataset={"builtin": "digits"},
        hyperparameters={
            "epochs": 2,
            "maxSteps": 70,
            "batchSize": 32,
            "learningRate": 0.01,
            "logEverySteps": 1,
            "lrSchedule": "linear",
            "seed": 5,
        },
        checkpoint={"everySteps": 10, "keep": 2},
    )
    (tmp_path / "killed").mkdir()
    config = write_config(tmp_path / "killed", resource)
    output = tmp_path / "killed" / "out"
    command = [str(BIN / "lmaas"), "train", "--config", str(config), "--output-dir", str(output)]
    first = launch(command, worker_env(tmp_path / "killed"), tmp_path / "killed" / "first.stderr")
    try:
        wait_for_event([first], lambda e: e.get("event") == "checkpoint" and e["step"] >= 30, timeout=60)
        os.kill(first.process.pid, signal.SIGKILL)
    finally:
        first.process.wait(timeout=30)
    killed_at = max(e["step"] for e in events([first]) if e["event"] == "progress")
    assert killed_at < 70

    code, lines, stderr = run_single(tmp_path / "killed", config, output)
    assert code == 0, stderr
    resume = next(e for e in lines if e["event"] == "resume")
    assert 30 <= resume["step"] <= killed_at and killed_at - resume["step"] <= 10
    assert lines[-1]["event"] == "done" and lines[-1]["step"] == 70

    (tmp_path / "straight").mkdir()  # the same process setup (threads included), never interrupted
    code, _, stderr = run_single(
        tmp_path / "straight", write_config(tmp_path / "straight", resource), tmp_path / "straight" / "out"
    )
    assert code == 0, stderr
    resumed = load_file(output / "artifact" / contract.WEIGHTS_FILE)
    straight = load_file(tmp_path / "straight" / "out" / "artifact" / contract.WEIGHTS_FILE)
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in resumed)


CONFIG_ERRORS = {
    "unknown factory module": ({"model": {"factory": "no_such_package.models:build"}}, "spec.model.factory"),
    "factory without that function": ({"model": {"factory": "tests.worker.factories:missing"}}, "spec.model.factory"),
    "factory returning no module": (
        {"model": {"factory": "tests.worker.factories:not_a_module"}},
        "spec.model.factory",
    ),
    "unknown model argument": ({"model": {"builtin": "mlp", "args": {"width": 3}}}, "spec.model.args"),
    "heads not dividing the embedding": (
        {
            "model": {"builtin": "char-gpt", "args": {"heads": 3, "embedding": 32}},
            "dataset": {"builtin": "shakespeare"},
        },
        "spec.model.args",
    ),
    "classifier on text": ({"dataset": {"builtin": "shakespeare"}}, "spec.model.builtin"),
    "model output not fitting the classes": ({"model": {"builtin": "mlp", "args": {"num_classes": 3}}}, "spec.model"),
    "bad dataset argument": ({"dataset": {"builtin": "digits", "args": {"colour": True}}}, "spec.dataset.args"),
    "spec that does not parse": ({"hyperparameters": {"batchSize": 0}}, "spec.hyperparameters.batchSize"),
    "unknown spec field": ({"epochs": 3}, "spec"),
    "custom command": ({"model": None, "dataset": None, "command": ["python", "train.py"]}, "spec.command"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_a_configuration_error_exits_78_naming_the_field(tmp_path, capsys, termination_log, case):
    change, field = CONFIG_ERRORS[case]
    spec = {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "hyperparameters": {"maxSteps": 2}}
    spec.update(change)
    spec = {k: v for k, v in spec.items() if v is not None}
    code = run_training(write_config(tmp_path, trainjob("broken", **spec)), tmp_path / "out")
    assert code == contract.EXIT_CONFIG_ERROR
    out, err = capsys.readouterr()
    error = progress_lines(out)[-1]
    assert error["event"] == "error" and error["message"].startswith(f"ConfigError: {field}")
    assert field in err and "Traceback" not in err
    assert json.loads(termination_log.read_text()) == error


def test_a_missing_config_or_output_dir_is_a_configuration_error(tmp_path, capsys):
    config = write_config(tmp_path, trainjob("ok", model={"builtin": "mlp"}, dataset={"builtin": "digits"}))
    assert run_training(tmp_path / "absent.json", tmp_path / "out") == contract.EXIT_CONFIG_ERROR
    assert run_training(config, None) == contract.EXIT_CONFIG_ERROR
    (tmp_path / "file").write_text("")
    assert run_training(config, tmp_path / "file" / "out") == contract.EXIT_CONFIG_ERROR
    messages = [e["message"] for e in progress_lines(capsys.readouterr().out)]
    assert "--config" in messages[0] and "--output-dir" in messages[1] and "not a writable directory" in messages[2]


def test_the_lmaas_command_exits_78_on_a_configuration_error(tmp_path):
    config = write_config(
        tmp_path, trainjob("bad", model={"factory": "nowhere.at_all:model"}, dataset={"builtin": "digits"})
    )
    started = time.monotonic()
    code, lines, stderr = run_single(tmp_path, config, tmp_path / "out")
    assert code == contract.EXIT_CONFIG_ERROR
    assert lines == [json.loads((tmp_path / "termination-log").read_text())]
    assert "spec.model.factory: cannot import module 'nowhere.at_all'" in lines[0]["message"]
    assert time.monotonic() - started < 60


def test_a_factory_model_and_factory_data_train_through_the_protocol(tmp_path, capsys):
    resource = trainjob(
        "blobs",
        model={"factory": "tests.worker.factories:linear_classifier"},
        dataset={"factory": "tests.worker.factories:blobs", "args": {"samples": 300}},
        hyperparameters={"epochs": 2, "batchSize": 20, "learningRate": 0.05},
    )
    assert run_training(write_config(tmp_path, resource), tmp_path / "out") == 0
    done = progress_lines(capsys.readouterr().out)[-1]
    assert done["evalValue"] > 90  # two well separated blobs
    module, card = load(
        tmp_path / "out" / "artifact",
        artifact_code=ArtifactCodePolicy(frozenset({"tests.worker.factories:linear_classifier"})),
    )
    assert card.model == ModelDefinition(
        builtin=None, factory="tests.worker.factories:linear_classifier", args={"in_features": 8, "num_classes": 2}
    )
    assert card.class_labels == ["left", "right"] and card.num_classes == 2
    assert card.dataset.factory == "tests.worker.factories:blobs"
    assert isinstance(module, torch.nn.Linear)


def test_char_gpt_on_shakespeare_lowers_its_perplexity_under_fsdp(tmp_path):
    from .launch import launch_job, wait_all

    resource = trainjob(
        "tiny-gpt",
        model={"builtin": "char-gpt", "args": {"layers": 2, "heads": 2, "embedding": 48, "context": 32}},
        dataset={"builtin": "shakespeare", "args": {"stride": 4}},
        strategy="fsdp",
        hyperparameters={
            "maxSteps": 60,
            "batchSize": 16,
            "learningRate": 0.004,
            "evalEverySteps": 20,
            "lrSchedule": "cosine",
            "warmupSteps": 5,
            "maxGradNorm": 1.0,
            "logEverySteps": 10,
        },
    )
    config = write_config(tmp_path, resource)
    agents = launch_job(tmp_path, config, tmp_path / "out", nnodes=1, nproc=2)
    assert wait_all(agents, timeout=120) == [0], agents[0].stderr()[-3000:]
    lines = events(agents)
    evals = [e["evalValue"] for e in lines if e["event"] == "eval"]
    assert [e["evalMetric"] for e in lines if e["event"] == "eval"] == ["perplexity"] * 3
    module, card = load(tmp_path / "out" / "artifact")
    vocabulary = len(card.vocab)
    assert evals[-1] < evals[0] and evals[-1] < vocabulary / 3  # uniform guessing scores the vocabulary size

    from lmaas_api.spec import DatasetDefinition
    from lmaas_worker.data import build_datasets

    data = build_datasets(
        DatasetDefinition(**card.dataset.model_dump(exclude={"seed"})),
        seed=card.dataset.seed,
        context=card.model.args["context"],
    )
    inputs, targets = map(torch.stack, zip(*(data.val[i] for i in range(len(data.val)))))
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(module(inputs).flatten(0, 1), targets.flatten())
    assert math.exp(loss.item()) == pytest.approx(evals[-1], rel=1e-4)


def test_resume_false_starts_afresh_and_drops_the_earlier_checkpoints(tmp_path, capsys):
    def resource(steps: int, resume: bool) -> dict:
        return trainjob(
            "fresh",
            model={"builtin": "mlp", "args": {"hidden": [16]}},
            dataset={"builtin": "digits"},
            hyperparameters={"maxSteps": steps, "logEverySteps": 5},
            checkpoint={"everySteps": 5, "keep": 2, "resume": resume},
        )

    output = tmp_path / "out"
    assert run_training(write_config(tmp_path, resource(30, True)), output) == 0
    assert run_training(write_config(tmp_path, resource(10, False)), output) == 0
    lines = progress_lines(capsys.readouterr().out)
    second = lines[max(i for i, e in enumerate(lines) if e["event"] == "start") :]
    assert "resume" not in [e["event"] for e in second]
    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == ["step-00000005", "step-00000010"]
