"""Run a CompressJob's steps in order, measure the input and every step's output, enforce the bound.

Each step's output is stored in the artifact format and loaded back before it is measured, so the
figures (size, latency, accuracy) are those of exactly what would be served. The last step's
output becomes `OUTPUT/artifact`; the report goes to OUTPUT in every case, also when a step broke
the quality bound (then no artifact is written). The report's latency speedup times the input and
the last output again, in alternating rounds (`measure.interleaved_latencies`).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmaas_api import contract
from lmaas_api.card import ModelCard, Producer, Quantization, Source, Sparsity, read_card
from lmaas_api.errors import ConfigError
from lmaas_api.spec import CompressionStep, DatasetDefinition, DistillStep, ModelDefinition, PruneStep, QuantizeStep

from .. import artifacts
from ..artifacts.int8_backend import default_kernel, describe_layer
from ..artifacts.layers import weight_layers
from ..artifacts.quantize import DEFAULT_INT4_GROUP_SIZE, dequantize_int4, dequantize_int8, quantize_int4, quantize_int8
from ..data import DataBundle, build_datasets
from ..factory import refuse_unless_allowed
from ..progress import Progress, utc_now
from ..train.tasks import TASKS, Task
from .config import INPUT_FIELD, CompressConfig
from .distill import distill, size_warning
from .measure import LatencySettings, Measurement, evaluate, interleaved_latencies, measure, quality
from .prune import prune_structured, prune_unstructured, schedule
from .report import describe_speedup, fit_line, summary, write_report
from .state import WorkingModel, working_model
from .training import train_epochs

log = logging.getLogger(__name__)

WORK_SUBDIR = ".compress-work"
FINE_TUNE_BATCH_SIZE = 64
SGD_SLOW_RATE = 0.01


@dataclass
class Outcome:
    line: dict[str, Any]
    """The final progress line (`done` or `error`), already trimmed for the termination log."""
    passed: bool


@dataclass
class CompressionJob:
    config: CompressConfig
    card: ModelCard
    data: DataBundle
    task: Task
    settings: LatencySettings
    dataset: dict[str, Any] = field(default_factory=dict)


def build_compression(config: CompressConfig, settings: LatencySettings) -> CompressionJob:
    """Read the input artifact's card and build the held-out data; problems are ConfigErrors."""
    try:
        card = artifacts.checked_card(config.input_dir)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(INPUT_FIELD, str(error)) from error
    if card.layout != "lmaas":
        raise ConfigError(
            "spec.model", f"the input artifact is a {card.layout} folder, which CompressJob cannot compress yet"
        )
    recorded = card.dataset
    if config.spec.dataset is not None:
        definition, field_name = config.spec.dataset, "spec.dataset"
    elif recorded is not None and (recorded.builtin or recorded.factory):
        if recorded.factory:
            refuse_unless_allowed(recorded.factory, "dataset.factory", config.spec.artifact_code)
        definition = DatasetDefinition(**recorded.model_dump(exclude={"seed"}))
        field_name = "the input artifact's dataset"
    else:
        raise ConfigError("spec.dataset", "the input artifact records no data set; set spec.dataset")
    # the split seed of the training run, so that held-out samples were never trained on
    split_seed = recorded.seed if recorded is not None and recorded.seed is not None else config.spec.seed
    context = (card.model.args or {}).get("context")
    try:
        data = build_datasets(definition, seed=split_seed, context=context)
    except ConfigError as error:
        raise ConfigError(field_name, str(error)) from error
    if data.task != card.task:
        raise ConfigError(field_name, f"the data set is for {data.task}, but the model solves {card.task}")
    return CompressionJob(
        config, card, data, TASKS[data.task], settings, {**definition.to_dict(), "splitSeed": split_seed}
    )


class Compressor:
    def __init__(self, job: CompressionJob, progress: Progress):
        self.job = job
        self.progress = progress
        self.spec = job.config.spec
        self.total = len(self.spec.steps)
        self.work = job.config.output_dir / WORK_SUBDIR
        self.measurements: list[Measurement] = []
        self.distillations: list[dict[str, Any]] = []
        self.input_module: nn.Module | None = None

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.perf_counter()
        kinds = [step.kind for step in self.spec.steps]
        card = self.job.card
        self.progress.emit(
            "start",
            step=0,
            totalSteps=self.total,
            message=f"compressing {_model_name(card.model)} with {', '.join(kinds)}",
        )
        shutil.rmtree(self.work, ignore_errors=True)
        try:
            module, _ = artifacts.load(self.job.config.input_dir, artifact_code=self.spec.artifact_code)
            self.input_module = module
            working, state = working_model(self.job.config.input_dir, card, self.spec.artifact_code)
            self._check_fits(module)
            self._record(
                measure(
                    "input",
                    module,
                    self.job.config.input_dir / contract.WEIGHTS_FILE,
                    state,
                    _parameter_names(working.module),
                    self.job.data.val,
                    self.job.task,
                    self.job.settings,
                ),
                0,
            )
            for index, step in enumerate(self.spec.steps):
                self.progress.emit("progress", step=index, totalSteps=self.total, message=step.kind)
                working = self._run_step(index, step, working, module)
                module, directory = self._store_and_load(index, step, working)
                failure = self._check_bound(index + 1, step.kind, self.measurements[-1])
                if failure:
                    return self._fail(failure, module, time.perf_counter() - started)
            return self._succeed(directory, module, time.perf_counter() - started)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _check_fits(self, module: nn.Module) -> None:
        x = torch.stack([self.job.data.val[i][0] for i in range(min(2, len(self.job.data.val)))])
        try:
            with torch.inference_mode():
                module(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise ConfigError(
                "spec.dataset",
                f"the input model cannot take the data set's inputs of shape "
                f"{list(x.shape[1:])}: {type(error).__name__}: {error}",
            ) from error

    # --- steps -------------------------------------------------------------------------------

    def _run_step(self, index: int, step: CompressionStep, working: WorkingModel, current: nn.Module) -> WorkingModel:
        log.info("step %d/%d: %s %s", index + 1, self.total, step.kind, getattr(step, step.kind).to_dict())
        if step.prune is not None:
            return self._prune(index, step.prune, working)
        if step.distill is not None:
            return self._distill(index, step.distill, current)
        return self._quantize(step.quantize, working)

    def _prune(self, index: int, step: PruneStep, working: WorkingModel) -> WorkingModel:
        working = working.copy()
        targets = schedule(step.sparsity, step.iterations)
        total_epochs = step.iterations * step.fine_tune_epochs
        original = None
        for round_index, target in enumerate(targets):
            try:
                if step.structure == "structured":
                    original = prune_structured(working, target, step.scope, original)
                else:
                    prune_unstructured(working, target, step.scope)
            except ValueError as error:
                raise ConfigError(f"spec.steps[{index}].prune", str(error)) from error
            done = round_index * step.fine_tune_epochs
            train_epochs(
                working.module,
                self.job.data.train,
                epochs=step.fine_tune_epochs,
                learning_rate=step.learning_rate,
                batch_size=FINE_TUNE_BATCH_SIZE,
                seed=self.spec.seed + 1000 * index + round_index,
                batch_loss=lambda m, x, y: self.job.task.loss(m(x), y),
                after_step=working.apply_masks,
                on_epoch=lambda epoch, loss, done=done: self.progress.emit(
                    "progress",
                    step=index,
                    totalSteps=self.total,
                    message="prune",
                    epoch=done + epoch,
                    totalEpochs=total_epochs,
                    loss=loss,
                ),
            )
            log.info(
                "pruned to %.1f%% (%s, %s) and fine-tuned %d epoch(s)",
                100 * target,
                step.structure,
                step.scope,
                step.fine_tune_epochs,
            )
        working.apply_masks()
        working.pruning = Sparsity(
            structure=step.structure,
            scope=step.scope,
            target=step.sparsity,
            iterations=step.iterations,
            format="smaller layers" if step.structure == "structured" else "bitmask",
        )
        return working

    def _distill(self, index: int, step: DistillStep, teacher: nn.Module) -> WorkingModel:
        field_name = f"spec.steps[{index}].distill.student"
        if step.learning_rate < SGD_SLOW_RATE:
            log.warning(
                "distillation trains with SGD (momentum 0.9); a learning rate of %g is slow for it: "
                "0.05 suits the builtin models",
                step.learning_rate,
            )
        try:
            result = distill(
                teacher,
                step,
                self.job.card,
                self.job.data.train,
                self.job.task,
                self.spec.seed,
                on_epoch=lambda name, epoch, loss: self.progress.emit(
                    "progress",
                    step=index,
                    totalSteps=self.total,
                    message="distill",
                    epoch=epoch + (step.epochs if name == "alone" else 0),
                    totalEpochs=2 * step.epochs,
                    loss=loss,
                ),
            )
        except ConfigError as error:
            raise ConfigError(field_name, str(error)) from error
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise ConfigError(
                field_name, f"the student cannot learn from this teacher and data: {type(error).__name__}: {error}"
            ) from error
        teacher_parameters = self.measurements[-1].parameters
        student_parameters = sum(p.numel() for p in result.student.parameters())
        warning = size_warning(teacher_parameters, student_parameters)
        if warning:
            log.warning("step %d (distill): %s", index + 1, warning)
        self.distillations.append(
            {
                "step": index + 1,
                "metric": self.job.task.metric,
                "teacher": self._quality(teacher),
                "student": self._quality(result.student),
                "alone": self._quality(result.alone),
                "teacherParameters": teacher_parameters,
                "studentParameters": student_parameters,
                "studentSmaller": warning is None,
                "temperature": step.temperature,
                "alpha": step.alpha,
                "epochs": step.epochs,
                "finalLoss": result.losses[-1],
                "aloneFinalLoss": result.alone_losses[-1],
            }
        )
        return WorkingModel(module=result.student, definition=result.definition)

    def _quantize(self, step: QuantizeStep, working: WorkingModel) -> WorkingModel:
        working = working.copy()
        if step.scheme == "int8":
            working.quantization = Quantization(scheme="int8")
        else:
            working.quantization = Quantization(scheme="int4", group_size=step.group_size or DEFAULT_INT4_GROUP_SIZE)
        with torch.no_grad():  # later steps start from the quantized values
            for _, layer in weight_layers(working.module):
                if step.scheme == "int8":
                    layer.weight.copy_(dequantize_int8(*quantize_int8(layer.weight)))
                else:
                    group = working.quantization.group_size
                    layer.weight.copy_(dequantize_int4(*quantize_int4(layer.weight, group), group))
        return working

    # --- measuring ---------------------------------------------------------------------------

    def _store_and_load(self, index: int, step: CompressionStep, working: WorkingModel) -> tuple[nn.Module, Path]:
        directory = self.work / f"step-{index + 1}"
        working.save(directory, self._card(working), metrics={})
        module, _ = artifacts.load(directory, artifact_code=self.spec.artifact_code)
        float_module, state = artifacts.load_float(directory, artifact_code=self.spec.artifact_code)
        self._record(
            measure(
                step.kind,
                module,
                directory / contract.WEIGHTS_FILE,
                state,
                _parameter_names(float_module),
                self.job.data.val,
                self.job.task,
                self.job.settings,
            ),
            index + 1,
        )
        return module, directory

    def _record(self, measurement: Measurement, completed: int) -> None:
        self.measurements.append(measurement)
        first = self.measurements[0]
        message = (
            f"{measurement.name}: {self.job.task.metric} {measurement.quality:.3f}, "
            f"{measurement.size_bytes:,} bytes "
            f"({measurement.size_bytes / first.size_bytes:.3f} of the input), p50 "
            f"{measurement.latency_ms[1]:.3f} ms at batch 1, {measurement.latency_ms[32]:.3f} ms at batch 32"
        )
        log.info(message)
        self.progress.emit(
            "eval",
            step=completed,
            totalSteps=self.total,
            evalMetric=self.job.task.metric,
            evalValue=measurement.quality,
            message=message,
        )

    def _check_bound(self, number: int, kind: str, m: Measurement) -> str | None:
        first = self.measurements[0]
        if first.accuracy is not None and m.accuracy is not None:
            drop = first.accuracy - m.accuracy
            if drop > self.spec.max_accuracy_drop + 1e-9:
                return (
                    f"step {number} ({kind}): accuracy {m.accuracy:.2f} is {drop:.2f} points below the input's "
                    f"{first.accuracy:.2f} (maxAccuracyDrop {self.spec.max_accuracy_drop:g})"
                )
        if first.perplexity is not None and m.perplexity is not None:
            increase = m.perplexity / first.perplexity - 1
            if increase > self.spec.max_perplexity_increase + 1e-9:
                return (
                    f"step {number} ({kind}): perplexity {m.perplexity:.3f} is {100 * increase:.1f}% above the "
                    f"input's {first.perplexity:.3f} (maxPerplexityIncrease {self.spec.max_perplexity_increase:g})"
                )
        return None

    # --- the end -----------------------------------------------------------------------------

    def _report(self, outcome: str, failure: str | None, output: nn.Module, wall_seconds: float) -> dict[str, Any]:
        card = self.job.card
        extra: dict[str, Any] = {}
        if self.distillations:
            last = self.distillations[-1]
            extra["distillation"] = {
                k: last[k]
                for k in ("teacher", "student", "alone", "teacherParameters", "studentParameters", "studentSmaller")
            }
        latencies = interleaved_latencies(self.input_module, output, self.job.data.val, self.job.settings)
        report = {
            "job": self.job.config.resource.name,
            "outcome": outcome,
            "failure": failure,
            "createdAt": utc_now(),
            "input": {
                "model": _model_name(card.model),
                "task": card.task,
                "producer": card.producer.to_dict() if card.producer else None,
                "dataset": self.job.dataset,
                "path": str(self.job.config.input_dir),
            },
            "steps": [step.to_dict() for step in self.spec.steps],
            "summary": summary(self.measurements, latencies, extra),
            "latencyRounds": {
                f"batch{batch}": {
                    "inputMs": [round(ms, 4) for ms in rounds["before"]],
                    "outputMs": [round(ms, 4) for ms in rounds["after"]],
                }
                for batch, rounds in latencies.items()
            },
            "distillation": self.distillations,
            "bounds": {
                "maxAccuracyDrop": self.spec.max_accuracy_drop,
                "maxPerplexityIncrease": self.spec.max_perplexity_increase,
            },
            "settings": {
                "threads": self.job.settings.threads,
                "latencyBudgetSeconds": self.job.settings.budget_seconds,
                "latencyRounds": self.job.settings.rounds,
                "int8Kernel": default_kernel(),
                "torch": torch.__version__,
                "seed": self.spec.seed,
            },
            "wallSeconds": round(wall_seconds, 3),
        }
        write_report(self.job.config.output_dir, report, self.measurements)
        return report

    def _fail(self, failure: str, output: nn.Module, wall_seconds: float) -> Outcome:
        log.error("%s; the report is in %s", failure, self.job.config.output_dir)
        report = self._report("failed", failure, output, wall_seconds)
        line = fit_line(
            self.progress.emit(
                "error",
                step=len(self.measurements) - 2,
                totalSteps=self.total,
                evalMetric=self.job.task.metric,
                evalValue=self.measurements[-1].quality,
                artifact={"path": None, "sizeBytes": None, "metrics": report["summary"]},
                message=failure,
            )
        )
        return Outcome(line, passed=False)

    def _succeed(self, directory: Path, output: nn.Module, wall_seconds: float) -> Outcome:
        report = self._report("succeeded", None, output, wall_seconds)
        config = self.job.config
        card = read_card(directory).model_copy(update={"created_at": utc_now()})
        size = artifacts.copy_artifact(directory, config.artifact_dir, card, metrics=report["summary"])
        log.info("artifact written to %s (%d bytes of weights)", config.artifact_dir, size)
        s, quality = report["summary"], self.measurements[-1].quality
        warnings = [
            f"; warning: step {d['step']}: {size_warning(d['teacherParameters'], d['studentParameters'])}"
            for d in self.distillations
            if not d["studentSmaller"]
        ]
        line = fit_line(
            self.progress.emit(
                "done",
                step=self.total,
                totalSteps=self.total,
                evalMetric=self.job.task.metric,
                evalValue=quality,
                artifact={
                    "path": contract.ARTIFACT_SUBDIR,
                    "uri": config.uri_of(contract.ARTIFACT_SUBDIR),
                    "sizeBytes": size,
                    "metrics": s,
                },
                message=f"{self.total} step(s): size ratio {s['sizeRatio']:.3f}, {self.job.task.metric} {quality:.3f}, "
                f"latency speedup at batch 1: {describe_speedup(s, 1)}" + "".join(warnings),
            )
        )
        return Outcome(line, passed=True)

    def _card(self, working: WorkingModel) -> ModelCard:
        """The output's card: the input's, with what the steps changed and who made it (the
        `compression` section is the writer's to fill in, from what it stores)."""
        quantization = None
        if working.quantization:
            scheme = working.quantization.scheme
            quantization = Quantization(
                scheme=scheme,
                group_size=working.quantization.group_size,
                symmetric=True,
                granularity="per-channel" if scheme == "int8" else "per-group",
                layers={name: describe_layer(layer, scheme) for name, layer in weight_layers(working.module)},
            )
        source = self.job.card
        return source.model_copy(
            update=dict(
                model=working.definition,
                quantization=quantization,
                sparsity=working.pruning,
                compression=None,
                parameters=sum(p.numel() for p in working.module.parameters()),
                producer=Producer.model_validate(self.job.config.producer),
                created_at=utc_now(),
                framework={"torch": torch.__version__},
                source=Source(producer=source.producer, model=source.model),
            )
        )

    def _quality(self, module: nn.Module) -> float:
        result = evaluate(module, self.job.data.val, self.job.task)
        return quality(result["accuracy"], result["perplexity"])


def _parameter_names(module: nn.Module) -> set[str]:
    return {name for name, _ in module.named_parameters()}


def _model_name(definition: ModelDefinition) -> str:
    return definition.builtin or definition.factory or "model"
