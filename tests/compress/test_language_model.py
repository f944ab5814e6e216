"""`lmaas compress` on a small char-gpt: perplexity is the measure and maxPerplexityIncrease the bound."""

from __future__ import annotations

import json

import pytest
import torch

from lmaas_api import contract
from lmaas_api.card import LayerSize
from lmaas_worker.artifacts import load
from lmaas_worker.artifacts.int8_backend import Int8Linear
from lmaas_worker.compress import run_compression

from .conftest import progress_events

pytestmark = pytest.mark.slow

CHAR_GPT = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "tiny-gpt", "namespace": "tests", "uid": "uid-tiny-gpt", "generation": 1},
    "spec": {
        "model": {"builtin": "char-gpt", "args": {"layers": 1, "embedding": 32, "heads": 2, "context": 32}},
        "dataset": {"builtin": "shakespeare", "args": {"stride": 16}},
        "hyperparameters": {"epochs": 1, "maxSteps": 60, "batchSize": 32, "learningRate": 0.003, "logEverySteps": 1000},
        "checkpoint": {"everySteps": 100000, "keep": 1},
    },
}


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    from lmaas_worker.train import run_training

    directory = tmp_path_factory.mktemp("char-gpt")
    (directory / "trainjob.json").write_text(json.dumps(CHAR_GPT))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LMAAS_TERMINATION_LOG", str(directory / "termination-log"))
        assert run_training(directory / "trainjob.json", directory / "out") == 0
    return directory / "out" / "artifact"


def compress(tmp_path, capsys, artifact, steps, **spec):
    config = tmp_path / "compressjob.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "lmaas.io/v1alpha1",
                "kind": "CompressJob",
                "metadata": {"name": "gpt-small", "namespace": "tests"},
                "spec": {"model": {"fromTrainJob": "tiny-gpt"}, "steps": steps, **spec},
            }
        )
    )
    capsys.readouterr()
    code = run_compression(config_path=config, input_dir=artifact, output_dir=tmp_path / "out")
    return code, progress_events(capsys.readouterr().out), tmp_path / "out"


def test_structured_pruning_and_int8_report_perplexity_and_the_output_generates(tmp_path, capsys, language_model):
    code, events, out = compress(
        tmp_path,
        capsys,
        language_model,
        [
            {"prune": {"sparsity": 0.5, "structure": "structured", "fineTuneEpochs": 1, "learningRate": 0.001}},
            {"quantize": {"scheme": "int8"}},
        ],
        maxPerplexityIncrease=0.5,
    )
    assert code == 0
    metrics = events[-1]["artifact"]["metrics"]
    steps = metrics["steps"]
    assert all(s["accuracy"] is None and s["perplexity"] > 1 for s in steps)
    assert "accuracyDelta" not in metrics
    assert metrics["perplexityRatio"] == pytest.approx(steps[-1]["perplexity"] / steps[0]["perplexity"], abs=1e-3)
    assert metrics["perplexityRatio"] <= 1.5
    # embeddings and norms stay float32 and weigh much in a model this small
    assert steps[1]["parameters"] < steps[0]["parameters"] and metrics["sizeRatio"] < 0.45
    module, card = load(out / "artifact")
    assert card.compression.sizes["blocks.0.mlp.0"] == LayerSize(inputs=32, outputs=64)  # 4 x 32 hidden units, halved
    assert isinstance(module.blocks[0].mlp[0], Int8Linear) and isinstance(module.head, Int8Linear)
    tokens = torch.randint(0, len(card.vocab), (2, 32))
    with torch.inference_mode():
        assert module(tokens).shape == (2, 32, len(card.vocab))


def test_a_step_that_raises_perplexity_beyond_the_bound_exits_79(tmp_path, capsys, language_model):
    code, events, out = compress(
        tmp_path,
        capsys,
        language_model,
        [{"prune": {"sparsity": 0.9, "fineTuneEpochs": 0}}],
        maxPerplexityIncrease=0.05,
    )
    assert code == contract.EXIT_QUALITY_BOUND
    assert events[-1]["event"] == "error"
    assert events[-1]["message"].startswith("step 1 (prune): perplexity ")
    assert "% above the input's" in events[-1]["message"] and "(maxPerplexityIncrease 0.05)" in events[-1]["message"]
    assert json.loads((out / "report.json").read_text())["outcome"] == "failed"
