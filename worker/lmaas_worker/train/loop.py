"""The training loop: steps, gradient accumulation, logging, evaluation, checkpoints, resume.

Data order is a pure function of (seed, epoch) and the position in the epoch (`plan`), the random
state for dropout is re-seeded from (seed, rank, step) before every optimizer step, and the
learning rate is a pure function of how far the run has got (`optim`). A job resumed from a
checkpoint on the same number of ranks therefore continues exactly as if it had never stopped; on
another number it trains exactly the samples still due (maxSteps counts steps of the world size
the run started on), on the same learning-rate curve.
Checkpoints are written every `checkpoint.everySteps` steps and after the last one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import resource
import time
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from lmaas_api import contract
from lmaas_api.errors import ConfigError

from ..data.batches import batches as batches_of
from ..distributed import DistributedContext
from ..progress import Progress, utc_now
from .build import Job
from .checkpoint import (
    CheckpointStore,
    check_fits,
    gather_state,
    load_sharded,
    read_sharded,
    save_sharded,
    scatter_state,
)
from .evaluate import evaluate
from .finish import language_model_figures, write_artifact
from .optim import lr_factor, set_learning_rate
from .parallel import gradient_sync
from .plan import TrainPlan, ceil_div, epoch_end, epoch_order, plan_training, position_after, rank_share

log = logging.getLogger(__name__)


def step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 10_007 + step) % 2**63


def reseed(seed: int, device: torch.device) -> None:
    """Seed the generators dropout draws from on `device`.

    Not torch.manual_seed: that also queues a lazy seeding, with a captured stack, for every
    accelerator type that is not initialised, which costs tens of microseconds and grows a list
    on every step.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


def model_state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of parameters and optimizer state this rank holds (its shards, under fsdp)."""

    def local(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to_local() if isinstance(tensor, DTensor) else tensor

    total = sum(local(p).nbytes for p in model.parameters())
    for state in optimizer.state.values():
        total += sum(local(v).nbytes for v in state.values() if torch.is_tensor(v))
    return total


def peak_memory_bytes(device: torch.device) -> dict[str, int]:
    peak = {"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.type == "cuda":
        peak["cuda"] = torch.cuda.max_memory_allocated(device)
    return peak


def read_failure(field: str | None, kind: str, message: str) -> Exception:
    """The error a rank raises when rank 0 could not read the checkpoint to resume from."""
    if field is not None:
        return ConfigError(field, message.removeprefix(f"{field}: "))
    return RuntimeError(f"rank 0 could not read the checkpoint to resume from: {kind}: {message}")


class Trainer:
    def __init__(self, job: Job, context: DistributedContext, progress: Progress):
        self.job = job
        self.context = context
        self.progress = progress
        config = job.config
        self.hp = config.spec.hyperparameters
        self.policy = config.spec.checkpoint
        self.store = CheckpointStore(config.checkpoint_dir, self.policy.keep)
        self.sharded = config.spec.model.hf is not None
        """A Hugging Face model's checkpoints are sharded, each rank writing its part (see `checkpoint`)."""
        self.size = len(job.data.train)
        self.step = 0
        self.epoch = 0
        """Epochs completed."""
        self.position = 0
        """Samples of the current epoch's global order consumed (see `plan`)."""
        self.first_world_size = context.world_size
        """The world size the run started on, in whose steps maxSteps counts (see `plan`)."""
        self.plan = self._plan()
        full_step = self.hp.batch_size * self.hp.gradient_accumulation_steps * context.world_size
        self.warmup_fraction = self.plan.fraction_done(self.hp.warmup_steps * full_step)
        """The part of the run warm-up lasts, fixed when the run starts (see `optim`)."""
        self.report_epoch = 1
        """1-based epoch of the step last taken, as progress lines report it."""
        self.history: dict[str, Any] = {"train": [], "eval": [], "evalMetric": job.task.metric, "learningRate": []}
        """Curves: [step, loss] and [step, metric] pairs, and [samples seen when a logged step began, its rate]."""
        self.last_loss: float | None = None
        self.last_eval: dict[str, Any] | None = None
        self.last_checkpoint_step: int | None = None
        self.resumed_from: int | None = None
        self.samples = 0  # samples trained on by all ranks in this attempt
        shape = job.data.input_spec.get("shape") or [1]
        self.tokens_per_sample = int(shape[0]) if job.data.task == "language-modeling" else None
        """A language model's block length: its throughput is told in tokens too."""
        self.train_seconds = 0.0
        """Wall time of the training loop in this attempt, less evaluation and checkpoint pauses."""
        self.training_peak: dict[str, int] | None = None
        self._interval = self._new_interval()
        self._pending_log: dict[str, Any] | None = None

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train to the end and write the artifact; returns the `done` progress line."""
        # Everything made while importing and building (about a million objects: torch, scikit-learn,
        # pydantic...) lives as long as the run. Freezing it keeps the collector from scanning it in
        # every full collection, each of which would otherwise stall a step for a tenth of a second.
        gc.collect()
        gc.freeze()
        try:
            return self._run()
        finally:
            gc.unfreeze()

    def _run(self) -> dict[str, Any]:
        started = time.perf_counter()
        if self.context.is_main:
            self.store.remove_incomplete()
            if not self.policy.resume and self.store.list():
                # a fresh start: older checkpoints would otherwise outrank this run's and be resumed later
                log.warning(
                    "checkpoint.resume is false: removing %d checkpoint(s) of an earlier run", len(self.store.list())
                )
                self.store.clear()
        checkpoint = self._resume() if self.policy.resume else None
        spec = self.job.config.spec
        self.progress.emit(
            "start",
            epoch=self.report_epoch,
            totalEpochs=self.plan.total_epochs,
            step=self.step,
            totalSteps=self.plan.total_steps,
            message=f"training {spec.model.label} on {spec.dataset.label} "
            f"with {spec.strategy} on {self.context.world_size} rank(s), backend {self.context.backend}",
        )
        if checkpoint is not None:
            self.progress.emit(
                "resume",
                step=self.step,
                totalSteps=self.plan.total_steps,
                epoch=self.report_epoch,
                totalEpochs=self.plan.total_epochs,
                checkpoint=checkpoint,
                message=f"resumed from {checkpoint['path']} (step {checkpoint['step']})",
            )
        self._interval = self._new_interval()
        self.job.model.train()  # evaluation puts it back in training mode when it is done
        while self.step < self.plan.total_steps:
            self._train_epoch()
        self._publish_log()
        self.training_peak = {
            **peak_memory_bytes(self.context.device),
            "modelState": model_state_bytes(self.job.model, self.job.optimizer),
        }
        if self.last_eval is None or self.last_eval["step"] != self.step:
            self._evaluate()
        if self.last_checkpoint_step != self.step:
            self._checkpoint()
        return self._finish(time.perf_counter() - started)

    def _plan(self) -> TrainPlan:
        hp = self.hp
        return plan_training(
            self.size,
            self.context.world_size,
            hp.batch_size,
            hp.gradient_accumulation_steps,
            hp.epochs,
            hp.max_steps,
            self.step,
            self.epoch,
            self.position,
            self.first_world_size,
        )

    @property
    def samples_seen(self) -> int:
        """Samples of the run's epochs consumed so far, whatever the world sizes that trained them."""
        return self.epoch * self.size + self.position

    def _train_epoch(self) -> None:
        world_size, batch_size = self.context.world_size, self.hp.batch_size
        accumulation = self.hp.gradient_accumulation_steps
        start, end = self.position, epoch_end(self.plan.total_samples, self.size, self.epoch)
        share = rank_share(epoch_order(self.size, self.hp.seed, self.epoch), start, end, self.context.rank, world_size)
        batches = batches_of(self.job.data.train, share, batch_size, pin_memory=self.context.device.type == "cuda")
        micro_batches = ceil_div(len(share), batch_size)
        taken = 0  # samples of its share this rank has trained on
        while taken < len(share) and self.step < self.plan.total_steps:
            micro = min(accumulation, micro_batches - taken // batch_size)
            taken = min(len(share), taken + micro * batch_size)
            position = position_after(start, taken, world_size, end)
            rate = self._learning_rate(position)
            self._interval["rate"] = [self.samples_seen, rate]
            self._optimizer_step(batches, micro, rate)
            self.step += 1
            self.report_epoch = self.epoch + 1
            epoch_ended = position == self.size
            self.epoch, self.position = (self.epoch + 1, 0) if epoch_ended else (self.epoch, position)
            self._after_step(epoch_ended)

    def _learning_rate(self, position: int) -> float:
        """The rate of the step about to run, which takes the current epoch to `position`."""
        start = self.plan.fraction_done(self.samples_seen)
        end = self.plan.fraction_done(self.epoch * self.size + position)
        return self.hp.learning_rate * lr_factor(start, end, self.hp.lr_schedule, self.warmup_fraction)

    def _optimizer_step(self, batches, micro_batches: int, learning_rate: float) -> None:
        job, device = self.job, self.context.device
        reseed(step_seed(self.hp.seed, self.context.rank, self.step), device)
        set_learning_rate(job.optimizer, learning_rate)
        autocast = (
            torch.autocast(device.type, dtype=job.autocast_dtype) if job.autocast_dtype else contextlib.nullcontext()
        )
        for i in range(micro_batches):
            x, y = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with gradient_sync(job.model, sync=i == micro_batches - 1):
                with autocast:
                    loss = job.task.loss(job.model(x), y)
                    if micro_batches > 1:
                        loss = loss / micro_batches
                loss.backward()
            self._interval["loss"] += loss.detach()
            self._interval["samples"] += len(x)
        if self.hp.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(job.model.parameters(), self.hp.max_grad_norm)
        job.optimizer.step()
        job.optimizer.zero_grad(set_to_none=True)
        self._interval["steps"] += 1

    def _after_step(self, epoch_ended: bool) -> None:
        self._publish_log()  # the previous logged step's: its sum has had a whole step to arrive
        final = self.step == self.plan.total_steps
        if self.step % self.hp.log_every_steps == 0 or final:
            self._log()
        every = self.hp.eval_every_steps
        if (every and self.step % every == 0) or (not every and epoch_ended) or final:
            self._evaluate()
        if self.step % self.policy.every_steps == 0 or final:
            self._checkpoint()

    # --- reporting ---------------------------------------------------------------------------

    def _new_interval(self) -> dict[str, Any]:
        return {
            "loss": torch.zeros((), device=self.context.device),
            "steps": 0,
            "samples": 0,
            "since": time.perf_counter(),
            "paused": 0.0,
            "rate": None,
        }

    def _tokens(self, samples_per_second: float | None) -> float | None:
        """A language model's throughput in tokens (blocks times their length); None for other models."""
        if samples_per_second is None or self.tokens_per_sample is None:
            return None
        return samples_per_second * self.tokens_per_sample

    def _pause(self, started: float) -> None:
        """Leave the time since `started` (an evaluation, a checkpoint) out of the throughput."""
        self._interval["paused"] += time.perf_counter() - started

    def _log(self) -> None:
        """Close the interval and start summing its loss over the ranks; `_publish_log` reports it.

        The sum runs in the background: a blocking collective here would hold every rank until the
        slowest arrives, on top of the gradient all-reduce each step already waits for.
        """
        interval = self._interval
        now = time.perf_counter()
        seconds = now - interval["since"] - interval["paused"]
        samples = interval["samples"] * self.context.world_size  # every rank trains as many samples
        loss = interval["loss"].double()
        wall = now - interval["since"]  # pauses included: they take as long in the steps left
        self._pending_log = {
            "work": dist.all_reduce(loss, async_op=True),
            "loss": loss,
            "steps": interval["steps"],
            "rate": samples / seconds if seconds > 0 else None,
            "step": self.step,
            "epoch": self.report_epoch,
            "learningRate": interval["rate"],
            "eta": wall / interval["steps"] * (self.plan.total_steps - self.step) if interval["steps"] else None,
        }
        self.samples += samples
        self.train_seconds += seconds
        self._interval = {**self._new_interval(), "since": now}

    def _publish_log(self) -> None:
        """Emit the progress line of the last logged step, if any, once its loss has been summed."""
        pending, self._pending_log = self._pending_log, None
        if pending is None:
            return
        pending["work"].wait()
        self.last_loss = float(pending["loss"]) / (self.context.world_size * max(1, pending["steps"]))
        self.history["train"].append([pending["step"], self.last_loss])
        self.history["learningRate"].append(pending["learningRate"])
        self.progress.emit(
            "progress",
            epoch=pending["epoch"],
            totalEpochs=self.plan.total_epochs,
            step=pending["step"],
            totalSteps=self.plan.total_steps,
            loss=self.last_loss,
            samplesPerSecond=pending["rate"],
            tokensPerSecond=self._tokens(pending["rate"]),
            learningRate=pending["learningRate"][1] if pending["learningRate"] else None,
            etaSeconds=pending["eta"],
        )

    def _evaluate(self) -> None:
        started = time.perf_counter()
        self._publish_log()
        job = self.job
        result = evaluate(job.model, job.data.val, job.task, self.context, self.hp.batch_size, job.autocast_dtype)
        self.last_eval = {**result, "step": self.step}
        self.history["eval"].append([self.step, result["value"]])
        self.progress.emit(
            "eval",
            epoch=self.report_epoch,
            totalEpochs=self.plan.total_epochs,
            step=self.step,
            totalSteps=self.plan.total_steps,
            evalMetric=result["metric"],
            evalValue=result["value"],
            message=f"held-out {result['metric']} {result['value']:.4f}, loss {result['loss']:.4f}",
        )
        self._pause(started)

    # --- checkpoints ------------------------------------------------------------------------

    def _trainer_state(self) -> dict[str, Any]:
        spec = self.job.config.spec
        return {
            "epoch": self.epoch,
            "epochPosition": self.position,
            "samplesSeen": self.samples_seen,
            "trainingSamples": self.size,
            "warmupFraction": self.warmup_fraction,
            "worldSize": self.context.world_size,
            "firstWorldSize": self.first_world_size,
            "batchSize": self.hp.batch_size,
            "gradientAccumulationSteps": self.hp.gradient_accumulation_steps,
            "strategy": spec.strategy,
            "seed": self.hp.seed,
            "totalSteps": self.plan.total_steps,
            "rng": "re-seeded from (seed, rank, step) before every step; nothing to restore",
            "lastLoss": self.last_loss,
            "lastEval": self.last_eval,
            "history": self.history,
            "createdAt": utc_now(),
        }

    def _checkpoint(self) -> None:
        started = time.perf_counter()
        try:
            self._write_checkpoint()
        finally:
            self._pause(started)

    def _write_checkpoint(self) -> None:
        self._publish_log()  # its loss goes into the checkpoint
        model, optimizer, is_main = self.job.model, self.job.optimizer, self.context.is_main
        self.last_checkpoint_step = self.step
        if self.sharded:
            state = self._trainer_state() if is_main else None
            written = save_sharded(self.store, self.step, model, optimizer, state, is_main)
        else:
            model_state, optimizer_state = gather_state(model, optimizer)
            if is_main:
                written = self.store.write(self.step, model_state, optimizer_state, self._trainer_state())
        if not is_main:
            return
        relative = f"{contract.CHECKPOINT_SUBDIR}/{written.path.name}"
        self.progress.emit(
            "checkpoint",
            epoch=self.report_epoch,
            totalEpochs=self.plan.total_epochs,
            step=self.step,
            totalSteps=self.plan.total_steps,
            checkpoint={"step": self.step, "path": relative, "uri": self.job.config.uri_of(relative)},
        )
        log.info("checkpoint %s written", relative)

    def _resume(self) -> dict[str, Any] | None:
        """Load the latest complete checkpoint, if any; returns its {step, path, uri}.

        Rank 0 reads it and tells the others what it found, or why it could not read it: every rank
        then raises (a `ConfigError` as a `ConfigError`), none is left waiting for the broadcast.
        """
        found: list[dict[str, Any] | None] = [None]
        model_state: dict[str, Any] = {}
        optimizer_state: dict[str, Any] = {}
        failure: Exception | None = None
        if self.context.is_main:
            try:
                latest = self.store.latest()
                if latest is not None:
                    if self.sharded:
                        sidecar = read_sharded(self.store, latest, self.job.model)
                    else:
                        model_state, optimizer_state, sidecar = self.store.read(latest)
                        check_fits(self.job.model, model_state, latest)
                    found = [{"step": latest.step, "name": latest.path.name, "state": sidecar}]
            except Exception as error:
                failure = error
                field = error.field if isinstance(error, ConfigError) else None
                found = [{"error": {"field": field, "kind": type(error).__name__, "message": str(error)}}]
        dist.broadcast_object_list(found, src=0)
        if failure is not None:
            raise failure
        if found[0] is None:
            return None
        if "error" in found[0]:
            raise read_failure(**found[0]["error"])
        state = found[0]["state"]
        if self.sharded:
            load_sharded(self.store.root / found[0]["name"], self.job.model, self.job.optimizer, state)
        else:
            scatter_state(self.job.model, self.job.optimizer, model_state, optimizer_state)
        if state["trainingSamples"] != self.size:
            raise ConfigError(
                "spec.dataset",
                f"the training split has {self.size} samples but the checkpoint "
                f"{found[0]['name']} was trained on {state['trainingSamples']}; "
                "resume with the same data or set checkpoint.resume to false",
            )
        self.step = found[0]["step"]
        self.epoch = state["epoch"]
        self.position = state["epochPosition"]
        self.warmup_fraction = state["warmupFraction"]
        self.first_world_size = state["firstWorldSize"]
        self.plan = self._plan()
        self.history = state["history"]
        self.last_loss = state.get("lastLoss")
        self.last_eval = state.get("lastEval")
        self.last_checkpoint_step = self.step
        self.resumed_from = self.step
        self.report_epoch = self.epoch + 1 if self.position else max(1, self.epoch)
        relative = f"{contract.CHECKPOINT_SUBDIR}/{found[0]['name']}"
        log.info(
            "resuming from %s: step %d (taken on %d rank(s)), epoch %d, %d of its samples seen; "
            "%d steps left on %d rank(s)",
            relative,
            self.step,
            state["worldSize"],
            self.epoch + 1,
            self.position,
            self.plan.total_steps - self.step,
            self.context.world_size,
        )
        return {"step": self.step, "path": relative, "uri": self.job.config.uri_of(relative)}

    # --- the artifact -----------------------------------------------------------------------

    def _finish(self, wall_seconds: float) -> dict[str, Any]:
        peaks: list[dict[str, Any] | None] = [None] * self.context.world_size
        dist.all_gather_object(peaks, {"training": self.training_peak, "run": peak_memory_bytes(self.context.device)})
        rate = self.samples / self.train_seconds if self.train_seconds > 0 else None
        metrics = {
            "trainLoss": self.last_loss,
            "evalMetric": self.last_eval["metric"],
            "evalValue": self.last_eval["value"],
            self.last_eval["metric"]: self.last_eval["value"],
            "evalLoss": self.last_eval["loss"],
            "steps": self.step,
            "epochs": self.plan.total_epochs,
            "samplesSeen": self.samples_seen,
            "samplesPerSecond": rate,
            **({"tokensPerSecond": self._tokens(rate)} if self.tokens_per_sample else {}),
            "trainSeconds": self.train_seconds,
            "wallSeconds": wall_seconds,
            "worldSize": self.context.world_size,
            "strategy": self.job.config.spec.strategy,
            "backend": self.context.backend,
            "mixedPrecision": str(self.job.autocast_dtype).removeprefix("torch.")
            if self.job.autocast_dtype
            else "fp32",
            "resumedFromStep": self.resumed_from,
            "peakRssBytesPerRank": [p["run"]["rss"] for p in peaks],
            "peakRssTrainingBytesPerRank": [p["training"]["rss"] for p in peaks],
            "modelStateBytesPerRank": [p["training"]["modelState"] for p in peaks],
        }
        if self.context.device.type == "cuda":
            metrics["peakCudaBytesPerRank"] = [p["run"].get("cuda") for p in peaks]
        metrics.update(language_model_figures(self.job))
        artifact = write_artifact(self.job, self.context, metrics, self.history)
        return self.progress.emit(
            "done",
            epoch=self.plan.total_epochs,
            totalEpochs=self.plan.total_epochs,
            step=self.step,
            totalSteps=self.plan.total_steps,
            loss=self.last_loss,
            evalMetric=self.last_eval["metric"],
            evalValue=self.last_eval["value"],
            samplesPerSecond=rate,
            tokensPerSecond=self._tokens(rate),
            etaSeconds=0.0,
            artifact=artifact,
            message=f"trained {self.step} steps; held-out {self.last_eval['metric']} {self.last_eval['value']:.4f}",
        )
