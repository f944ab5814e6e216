"""`lmaas compress` on a trained digits MLP: every step and chain meets the targets of DESIGN.md,
the accuracy bound fails the job with its reason, and the output loads and predicts."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from lmaas_api import contract
from lmaas_api.spec import DatasetDefinition
from lmaas_worker.artifacts import load
from lmaas_worker.artifacts.int8_backend import Int8Linear
from lmaas_worker.compress import run_compression
from lmaas_worker.compress.measure import evaluate
from lmaas_worker.data import build_datasets
from lmaas_worker.serve.model import open_model
from lmaas_worker.train.tasks import TASKS

from .conftest import compressjob, progress_events

pytestmark = pytest.mark.slow

STUDENT = {"builtin": "mlp", "args": {"hidden": [32]}}
DISTILL = {"student": STUDENT, "temperature": 8, "alpha": 0.9, "epochs": 60, "learningRate": 0.05, "batchSize": 64}


def compress(tmp_path, capsys, teacher, steps, **spec):
    config = tmp_path / "compressjob.json"
    config.write_text(json.dumps(compressjob(tmp_path.name[:40].lower().replace("_", "-"), steps, **spec)))
    capsys.readouterr()
    code = run_compression(config_path=config, input_dir=teacher, output_dir=tmp_path / "out")
    events = progress_events(capsys.readouterr().out)
    return code, events, tmp_path / "out"


def held_out_accuracy(module) -> float:
    data = build_datasets(DatasetDefinition.parse({"builtin": "digits"}), seed=0)
    return evaluate(module, data.val, TASKS["classification"])["accuracy"]


def held_bytes(module) -> int:
    """Bytes of every tensor `module` holds (parameters, buffers, tensors kept as attributes, each
    storage once), and of the int8 weights in fbgemm's packed weights, which are not tensors."""
    storages, packed = {}, 0
    for layer in module.modules():
        for value in (*layer.parameters(recurse=False), *layer.buffers(recurse=False), *vars(layer).values()):
            if torch.is_tensor(value):
                storages[value.untyped_storage().data_ptr()] = value.untyped_storage().nbytes()
            elif isinstance(value, torch.ScriptObject):
                packed += torch.ops.quantized.linear_unpack(value)[0].int_repr().nbytes
    return sum(storages.values()) + packed


def served(artifact):
    """The module of `artifact` as the serving worker loads it."""
    model = open_model(artifact, None)
    model.load()
    return model.module


def check_done(code, events, out, termination_log, total):
    assert code == 0
    done = events[-1]
    assert done["event"] == "done" and done["step"] == done["totalSteps"] == total
    assert all(set(e) == set(contract.PROGRESS_KEYS) for e in events)
    running = [(e["step"], e["message"]) for e in events if e["event"] == "progress" and e["epoch"] is None]
    assert [step for step, _ in running] == list(range(total))
    metrics = done["artifact"]["metrics"]
    assert done["artifact"]["path"] == "artifact"
    assert done["artifact"]["sizeBytes"] == (out / "artifact" / contract.WEIGHTS_FILE).stat().st_size
    steps = metrics["steps"]
    assert steps[0]["name"] == "input" and len(steps) == total + 1
    assert metrics["sizeRatio"] == pytest.approx(steps[-1]["sizeBytes"] / steps[0]["sizeBytes"], abs=1e-4)
    assert metrics["accuracyDelta"] == pytest.approx(steps[-1]["accuracy"] - steps[0]["accuracy"], abs=1e-2)
    assert json.loads(termination_log.read_text()) == done
    assert len(termination_log.read_bytes()) <= 4096
    report = json.loads((out / "report.json").read_text())
    assert report["outcome"] == "succeeded" and report["summary"]["steps"] == steps
    # the speedup: the median of alternating rounds, its range, and what it says
    for suffix in ("", "Batch32"):
        low, high = metrics[f"latencySpeedup{suffix}Range"]
        assert low <= metrics[f"latencySpeedup{suffix}"] <= high
        assert metrics[f"latencyVerdict{suffix}"] == (
            "faster" if low > 1 else "slower" if high < 1 else "no measurable gain"
        )
    assert metrics["latencyRounds"] == report["settings"]["latencyRounds"] == 5
    assert all(len(r["inputMs"]) == len(r["outputMs"]) == 5 for r in report["latencyRounds"].values())
    assert "alternating rounds" in done["message"] and "alternating rounds" in (out / "report.md").read_text()
    assert (out / "report.md").read_text().count("\n| ") == total + 2  # header and one row per model
    assert (out / "size-vs-quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return metrics


def test_int8_is_under_three_tenths_of_the_size_within_a_point_and_loads_as_integer_layers(
    tmp_path, capsys, teacher, worker_environment
):
    code, events, out = compress(tmp_path, capsys, teacher, [{"quantize": {"scheme": "int8"}}])
    metrics = check_done(code, events, out, worker_environment, 1)
    assert metrics["sizeRatio"] <= 0.30
    assert metrics["accuracyDelta"] >= -1.0
    module, card = load(out / "artifact")
    assert card.quantization.scheme == "int8" and card.producer.kind == "CompressJob"
    assert isinstance(module.net[0], Int8Linear)
    # this model's layers (64x256, 256x128, 128x10) are too small to gain from int8: the card says so
    assert {name: layer.to_dict() for name, layer in card.quantization.layers.items()} == {
        name: {
            "kind": "Linear",
            "stored": "int8",
            "compute": "float32",
            "kernel": "float32 on weights dequantized at load",
        }
        for name in ("net.0", "net.3", "net.6")
    }
    stored = load_file(out / "artifact" / contract.WEIGHTS_FILE)
    assert stored["net.0.weight.values"].dtype == torch.int8 and stored["net.0.weight.scale"].dtype == torch.float32
    # the artifact predicts: its held-out accuracy is what the report says
    assert held_out_accuracy(module) == pytest.approx(metrics["steps"][-1]["accuracy"], abs=1e-3)


def test_a_served_int8_model_holds_no_more_memory_than_the_float_one(tmp_path, capsys, teacher, worker_environment):
    code, _, out = compress(tmp_path, capsys, teacher, [{"quantize": {"scheme": "int8"}}])
    assert code == 0
    before, after = held_bytes(served(teacher)), held_bytes(served(out / "artifact"))
    assert after <= before, f"{after:,} bytes after int8 against {before:,} before"


@pytest.mark.parametrize(
    "structure, rate, bound",
    [
        ("unstructured", 0.0005, 1.0),  # DESIGN.md's target: half the weights, at most one point
        # whole channels: both hidden layers halved leave about a quarter of the weights; it recovers less
        # in three epochs (0.3 to 1.4 points over seeds 0-3), with a larger rate than the default
        ("structured", 0.001, 2.0),
    ],
)
def test_half_pruned_and_fine_tuned_is_within_its_bound_and_a_smaller_file(
    tmp_path, capsys, teacher, worker_environment, structure, rate, bound
):
    code, events, out = compress(
        tmp_path,
        capsys,
        teacher,
        [{"prune": {"sparsity": 0.5, "structure": structure, "fineTuneEpochs": 3, "learningRate": rate}}],
        maxAccuracyDrop=bound,
    )
    metrics = check_done(code, events, out, worker_environment, 1)
    assert metrics["accuracyDelta"] >= -bound
    first, pruned = metrics["steps"]
    fine_tune = [e for e in events if e["event"] == "progress" and e["epoch"] is not None]
    assert [e["epoch"] for e in fine_tune] == [1, 2, 3] and all(e["message"] == "prune" for e in fine_tune)
    if structure == "unstructured":
        assert pruned["parameters"] == first["parameters"]
        assert pruned["nonzeroParameters"] <= 0.51 * first["parameters"] + 394  # biases are not pruned
        assert metrics["sizeRatio"] < 0.56
    else:
        assert pruned["parameters"] == pruned["nonzeroParameters"] < 0.5 * first["parameters"]
        assert metrics["sizeRatio"] < 0.5
    module, card = load(out / "artifact")
    assert card.sparsity.structure == structure
    assert held_out_accuracy(module) == pytest.approx(pruned["accuracy"], abs=1e-3)


def test_gradual_pruning_reaches_the_target_in_rounds(tmp_path, capsys, teacher, worker_environment):
    code, events, out = compress(
        tmp_path,
        capsys,
        teacher,
        [{"prune": {"sparsity": 0.8, "scope": "layer", "iterations": 3, "fineTuneEpochs": 1, "learningRate": 0.001}}],
        maxAccuracyDrop=3,
    )
    metrics = check_done(code, events, out, worker_environment, 1)
    fine_tune = [e for e in events if e["event"] == "progress" and e["epoch"] is not None]
    assert [(e["epoch"], e["totalEpochs"]) for e in fine_tune] == [(1, 3), (2, 3), (3, 3)]
    stored = load_file(out / "artifact" / contract.WEIGHTS_FILE)
    card = json.loads((out / "artifact" / contract.MODEL_CARD_FILE).read_text())
    for name, entry in card["compression"]["tensors"].items():  # every layer at 80%, in bitmask layout
        assert entry["layout"] == "bitmask"
        count = torch.tensor(entry["shape"]).prod().item()
        assert stored[f"{name}.values"].numel() == pytest.approx(0.2 * count, abs=1)
    assert metrics["accuracyDelta"] >= -3.0


def test_prune_then_quantize_is_smaller_than_either_within_a_point(tmp_path, capsys, teacher, worker_environment):
    code, events, out = compress(
        tmp_path, capsys, teacher, [{"prune": {"sparsity": 0.5, "fineTuneEpochs": 3}}, {"quantize": {"scheme": "int8"}}]
    )
    metrics = check_done(code, events, out, worker_environment, 2)
    assert [s["name"] for s in metrics["steps"]] == ["input", "prune", "quantize"]
    assert metrics["sizeRatio"] <= 0.30 and metrics["steps"][2]["sizeBytes"] < metrics["steps"][1]["sizeBytes"]
    assert metrics["accuracyDelta"] >= -1.0
    stored = load_file(out / "artifact" / contract.WEIGHTS_FILE)
    assert stored["net.0.weight.values"].dtype == torch.int8 and "net.0.weight.mask" in stored
    module, _ = load(out / "artifact")
    assert held_out_accuracy(module) == pytest.approx(metrics["steps"][-1]["accuracy"], abs=1e-3)


def test_a_distilled_student_beats_the_same_student_trained_alone_and_quantizes(
    tmp_path, capsys, teacher, worker_environment
):
    code, events, out = compress(
        tmp_path, capsys, teacher, [{"distill": DISTILL}, {"quantize": {"scheme": "int8"}}], maxAccuracyDrop=3
    )
    metrics = check_done(code, events, out, worker_environment, 2)
    distilled = metrics["distillation"]
    assert distilled["teacherParameters"] >= 4 * distilled["studentParameters"] and distilled["studentSmaller"]
    assert "warning" not in events[-1]["message"]
    assert distilled["student"] > distilled["alone"]  # held-out accuracy, points
    assert metrics["steps"][1]["accuracy"] == pytest.approx(distilled["student"], abs=1e-3)
    assert metrics["steps"][2]["accuracy"] >= metrics["steps"][1]["accuracy"] - 1.0
    assert metrics["sizeRatio"] < 0.1
    report = json.loads((out / "report.json").read_text())
    assert report["distillation"][0]["teacher"] == pytest.approx(metrics["steps"][0]["accuracy"], abs=1e-3)
    module, card = load(out / "artifact")
    assert card.model.args["hidden"] == [32] and card.quantization.scheme == "int8"
    assert module(torch.rand(3, 64)).shape == (3, 10)


def test_a_student_larger_than_its_teacher_is_reported_and_warned_about(tmp_path, capsys, teacher, worker_environment):
    larger = {**DISTILL, "student": {"builtin": "mlp", "args": {"hidden": [512, 256]}}, "epochs": 1}
    code, events, out = compress(tmp_path, capsys, teacher, [{"distill": larger}], maxAccuracyDrop=100)
    assert code == 0
    distilled = events[-1]["artifact"]["metrics"]["distillation"]
    assert distilled["studentParameters"] > distilled["teacherParameters"] and not distilled["studentSmaller"]
    assert (
        f"warning: step 1: the distilled student has {distilled['studentParameters']:,} parameters, not fewer "
        f"than its teacher's {distilled['teacherParameters']:,}"
    ) in events[-1]["message"]
    assert "NOT smaller than the teacher's" in (out / "report.md").read_text()


def test_distillation_beats_training_alone_on_average_over_seeds(teacher):
    """The claim behind the test above, less dependent on one seed: eight seeds, the same student."""
    from lmaas_api.spec import DistillStep
    from lmaas_worker.compress.distill import distill

    module, card = load(teacher)
    data = build_datasets(DatasetDefinition.parse({"builtin": "digits"}), seed=0)
    task = TASKS["classification"]
    gaps = []
    for seed in range(8):
        result = distill(module, DistillStep.parse(DISTILL), card, data.train, task, seed)
        gaps.append(
            evaluate(result.student, data.val, task)["accuracy"] - evaluate(result.alone, data.val, task)["accuracy"]
        )
    assert sum(gaps) / len(gaps) > 0, gaps
    assert sum(g > 0 for g in gaps) >= 5, gaps


def test_a_step_that_breaks_max_accuracy_drop_fails_naming_the_step_with_the_report_written(
    tmp_path, capsys, teacher, worker_environment
):
    code, events, out = compress(
        tmp_path,
        capsys,
        teacher,
        [
            {"quantize": {"scheme": "int8"}},
            {"prune": {"sparsity": 0.97, "fineTuneEpochs": 0}},
            {"quantize": {"scheme": "int4"}},
        ],
        maxAccuracyDrop=1.0,
    )
    assert code == contract.EXIT_QUALITY_BOUND == 79
    error = events[-1]
    assert error["event"] == "error" and error["step"] == 1  # one step completed before the failing one
    assert error["message"].startswith("step 2 (prune): accuracy ")
    assert "points below the input's" in error["message"] and "(maxAccuracyDrop 1)" in error["message"]
    summary = error["artifact"]["metrics"]
    assert [s["name"] for s in summary["steps"]] == ["input", "quantize", "prune"]  # the third step never ran
    assert summary["accuracyDelta"] < -1.0
    assert json.loads(worker_environment.read_text()) == error
    report = json.loads((out / "report.json").read_text())
    assert report["outcome"] == "failed" and report["failure"] == error["message"]
    assert "step 2 (prune)" in (out / "report.md").read_text()
    assert (out / "size-vs-quality.png").exists()
    assert not (out / "artifact").exists()


@pytest.mark.parametrize(
    "steps, field",
    [
        ([{"distill": {"student": {"builtin": "char-gpt"}}}], "spec.steps[0].distill.student"),
        ([{"prune": {"sparsity": 1.5}}], "spec.steps[0].prune.sparsity"),
    ],
)
def test_a_configuration_that_cannot_work_exits_78_naming_the_field(
    tmp_path, capsys, teacher, worker_environment, steps, field
):
    code, events, out = compress(tmp_path, capsys, teacher, steps)
    assert code == contract.EXIT_CONFIG_ERROR
    assert events[-1]["event"] == "error" and field in events[-1]["message"]


def test_a_missing_input_artifact_is_a_configuration_error(tmp_path, capsys, worker_environment):
    code, events, _ = compress(tmp_path, capsys, tmp_path / "nowhere", [{"quantize": {}}])
    assert code == contract.EXIT_CONFIG_ERROR and "--input-dir" in events[-1]["message"]
