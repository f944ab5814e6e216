"""Checkpoints: safetensors weights and optimizer state plus a JSON sidecar, written atomically.

Two formats. A builtin or factory model's checkpoint is gathered on rank 0 ("full", below). A Hugging
Face model's is sharded: every rank writes its own part and reads what it needs, and no rank
gathers the whole model (see "sharded", after it).

Full, under `$LMAAS_OUTPUT_DIR/checkpoints/`:

    step-00000100/model.safetensors      the model's trainable state, in full (fsdp gathers it on
                                         rank 0): every parameter that requires a gradient, and the
                                         buffers
    step-00000100/optimizer.safetensors  every tensor of the optimizer state ("state::<param>::<name>")
    step-00000100/state.json             the rest: step, epoch, position in the epoch (in samples of
                                         its global order, see `plan`), world size and the one the
                                         run started on, optimizer param_groups and non-tensor
                                         state, curves so far

Only checkpoints of this format (`CHECKPOINT_FORMAT`) are read: one of another lmaas version is a
configuration error that names `spec.checkpoint.resume`.

A checkpoint is written into a hidden temporary directory, every file and the directory are
fsynced, and only then renamed to `step-NNNNNNNN` (`artifacts.files.atomic_directory`): a directory
with that name is complete. The newest `keep` are kept. Nothing is ever pickled.

Frozen parameters are left out: a LoRA run's base model (see `lmaas_worker.models.lora`) never
changes, and every attempt builds it again from its spec, so its checkpoints hold only the adapters
(and their optimizer state), whatever the size of the base. Resuming checks that a checkpoint holds
exactly the trainable state of the model being resumed (`check_fits`).

Only rank 0 touches the files of a full checkpoint. Saving gathers full state dicts on rank 0
(`get_model_state_dict`/`get_optimizer_state_dict` with `full_state_dict=True, cpu_offload=True`);
loading hands rank 0's full state dicts to `set_*_state_dict(..., broadcast_from_rank0=True)`, which
scatters them into DDP replicas or FSDP shards.

Sharded (`SHARDED_FORMAT`), written and read with `torch.distributed.checkpoint` by every rank
(`artifacts.shards`), which every node's output volume must therefore show:

    step-00000100/shard-0000R-model-00001-of-00001.safetensors   rank R-1's part of the trainable
                                         model state ("model.<name>") and of the optimizer's tensors
                                         ("optimizer.state::<param>::<name>"), each piece with its
                                         place in the full tensor
    step-00000100/state.json             as above, rank 0's

Loading reshards: a checkpoint written on one number of ranks resumes on any other.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from lmaas_api.errors import ConfigError

from ..artifacts.files import REPLACED_PREFIX, TEMPORARY_PREFIX, atomic_directory
from ..artifacts.shards import distinct_state, load_pieces, save_pieces, saved_names, shared_atomic_directory

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "lmaas.checkpoint/v3"
SHARDED_FORMAT = "lmaas.checkpoint.sharded/v1"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
_NAME = re.compile(r"^step-(\d{8,})$")
_SEPARATOR = "::"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


class CheckpointStore:
    """The checkpoint directory: list, write atomically, read, prune. Rank 0 only."""

    def __init__(self, root: Path, keep: int):
        self.root = Path(root)
        self.keep = keep

    def list(self) -> list[Checkpoint]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _NAME.match(entry.name)
            if match and entry.is_dir() and (entry / STATE_FILE).is_file():
                found.append(Checkpoint(int(match.group(1)), entry))
        return sorted(found, key=lambda c: c.step)

    def latest(self) -> Checkpoint | None:
        checkpoints = self.list()
        return checkpoints[-1] if checkpoints else None

    def remove_incomplete(self) -> None:
        """Delete temporary directories left by a writer that died mid-write."""
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.name.startswith((TEMPORARY_PREFIX, REPLACED_PREFIX)):
                    shutil.rmtree(entry, ignore_errors=True)

    def write(
        self,
        step: int,
        model_state: dict[str, torch.Tensor],
        optimizer_state: dict[str, Any],
        trainer_state: dict[str, Any],
    ) -> Checkpoint:
        final = self.root / checkpoint_name(step)
        optimizer_tensors, optimizer_rest = flatten_optimizer_state(optimizer_state)
        with atomic_directory(final) as temporary:
            save_file(_contiguous(model_state), temporary / MODEL_FILE, metadata={"format": "pt"})
            save_file(_contiguous(optimizer_tensors), temporary / OPTIMIZER_FILE, metadata={"format": "pt"})
            sidecar = {"format": CHECKPOINT_FORMAT, **trainer_state, "step": step, "optimizer": optimizer_rest}
            (temporary / STATE_FILE).write_text(json.dumps(sidecar, indent=1, allow_nan=False))
        self.prune()
        return Checkpoint(step, final)

    def read_sidecar(self, checkpoint: Checkpoint, expected_format: str) -> dict[str, Any]:
        """The checkpoint's state.json, if it is of `expected_format`; a ConfigError otherwise."""
        sidecar = json.loads((checkpoint.path / STATE_FILE).read_text())
        if sidecar.get("format") != expected_format:
            raise ConfigError(
                "spec.checkpoint.resume",
                f"the checkpoint {checkpoint.path.name} was written by another version of lmaas "
                f"(format {sidecar.get('format')!r}; this one reads {expected_format!r}) and cannot "
                "be resumed: set checkpoint.resume to false to start afresh (which removes the "
                "checkpoints), or remove them from the output",
            )
        return sidecar

    def read(self, checkpoint: Checkpoint) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        sidecar = self.read_sidecar(checkpoint, CHECKPOINT_FORMAT)
        model_state = load_file(checkpoint.path / MODEL_FILE)
        optimizer_state = unflatten_optimizer_state(
            load_file(checkpoint.path / OPTIMIZER_FILE), sidecar.pop("optimizer")
        )
        return model_state, optimizer_state, sidecar

    def clear(self) -> None:
        for checkpoint in self.list():
            shutil.rmtree(checkpoint.path, ignore_errors=True)

    def prune(self) -> None:
        for old in self.list()[: -self.keep]:
            shutil.rmtree(old.path, ignore_errors=True)


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors on CPU, contiguous, each in memory of its own: safetensors refuses tensors that share
    memory, as tied parameters do (a language model's token embeddings and output head)."""
    stored: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, value in tensors.items():
        value = value.detach().to("cpu").contiguous()
        if value.untyped_storage().data_ptr() in seen:
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        stored[name] = value
    return stored


def flatten_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict keyed by parameter names into tensors and JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param, values in (state.get("state") or {}).items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state{_SEPARATOR}{param}{_SEPARATOR}{name}"] = value
            else:
                scalars.setdefault(param, {})[name] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in state.get("param_groups") or []
    ]
    return tensors, {"paramGroups": groups, "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, param, name = key.split(_SEPARATOR)
        state.setdefault(param, {})[name] = value
    for param, values in (rest.get("scalars") or {}).items():
        state.setdefault(param, {}).update(values)
    groups = []
    for group in rest.get("paramGroups") or []:
        # betas and similar pairs were tuples before JSON; params stays a list of names
        groups.append({k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()})
    return {"state": state, "param_groups": groups}


def check_fits(model: nn.Module, names: Iterable[str], checkpoint: Checkpoint, sharded: bool = False) -> None:
    """Raise a ConfigError unless `names` (of the model state read from `checkpoint`) are exactly
    those of the trainable state of `model` (without tied aliases, in a sharded checkpoint). Rank 0
    alone calls it, before the state is loaded."""
    expected = get_model_state_dict(model, options=StateDictOptions(ignore_frozen_params=True))
    expected = set(distinct_state(model, expected) if sharded else expected)
    names = set(names)
    missing, unexpected = sorted(expected - names), sorted(names - expected)
    if missing or unexpected:
        raise ConfigError(
            "spec.checkpoint.resume",
            f"the checkpoint {checkpoint.path.name} holds the state of another model (missing "
            f"{_few(missing)}; unexpected {_few(unexpected)}) and cannot be resumed: set checkpoint.resume "
            "to false to start afresh (which removes the checkpoints), or remove them from the output",
        )


def _few(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"


# --- collective: every rank calls these -------------------------------------------------------

_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
_GATHER_TRAINABLE = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
_SCATTER = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
# Not strict, so that the frozen parameters a checkpoint leaves out keep their values; `check_fits`
# has made sure by then that nothing else is left out.
_SCATTER_TRAINABLE = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)


def gather_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full model state on rank 0 (on CPU); an empty dict on other ranks of a sharded model."""
    return get_model_state_dict(model, options=_GATHER)


def gather_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What a checkpoint holds, on rank 0: the model's trainable state and the optimizer's."""
    model_state = get_model_state_dict(model, options=_GATHER_TRAINABLE)
    return model_state, get_optimizer_state_dict(model, optimizer, options=_GATHER)


def scatter_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
) -> None:
    """Load rank 0's full state dicts, as `gather_state` made them, into every rank (other ranks pass
    empty dicts)."""
    set_model_state_dict(model, model_state, options=_SCATTER_TRAINABLE)
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=_SCATTER)


# --- sharded: every rank calls these ----------------------------------------------------------

_LOCAL_TRAINABLE = StateDictOptions(ignore_frozen_params=True)
# Not strict, for the frozen parameters and tied aliases a sharded checkpoint leaves out.
_LOCAL_LOAD = StateDictOptions(strict=False)


def _sharded_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """({"model": ..., "optimizer": ...}, the optimizer's JSON-able rest): this rank's shards (or
    replicas), which DCP saves from and loads into."""
    model_state = distinct_state(model, get_model_state_dict(model, options=_LOCAL_TRAINABLE))
    optimizer_tensors, optimizer_rest = flatten_optimizer_state(get_optimizer_state_dict(model, optimizer))
    return {"model": model_state, "optimizer": optimizer_tensors}, optimizer_rest


def save_sharded(
    store: CheckpointStore,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any] | None,
    is_main: bool,
) -> Checkpoint | None:
    """Write a sharded checkpoint, each rank its part; rank 0, which alone passes the trainer state,
    writes state.json and returns the checkpoint (the others None)."""
    tensors, optimizer_rest = _sharded_tensors(model, optimizer)
    final = store.root / checkpoint_name(step)
    with shared_atomic_directory(final, is_main) as temporary:
        save_pieces(tensors, temporary)
        if is_main:
            sidecar = {"format": SHARDED_FORMAT, **trainer_state, "step": step, "optimizer": optimizer_rest}
            (temporary / STATE_FILE).write_text(json.dumps(sidecar, indent=1, allow_nan=False))
    if not is_main:
        return None
    store.prune()
    return Checkpoint(step, final)


def read_sharded(store: CheckpointStore, checkpoint: Checkpoint, model: nn.Module) -> dict[str, Any]:
    """Rank 0: the sidecar of a sharded checkpoint, once its format and model state are checked."""
    sidecar = store.read_sidecar(checkpoint, SHARDED_FORMAT)
    prefix = "model."
    names = {name.removeprefix(prefix) for name in saved_names(checkpoint.path) if name.startswith(prefix)}
    check_fits(model, names, checkpoint, sharded=True)
    return sidecar


def load_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, sidecar: dict[str, Any]) -> None:
    """Every rank: load the sharded checkpoint at `path` (its sidecar as `read_sharded` returned it)
    into this rank's shards of the model and the optimizer, on whatever number of ranks."""
    tensors, _ = _sharded_tensors(model, optimizer)
    load_pieces(tensors, path)
    set_model_state_dict(model, tensors["model"], options=_LOCAL_LOAD)
    optimizer_state = unflatten_optimizer_state(tensors["optimizer"], sidecar["optimizer"])
    set_optimizer_state_dict(model, optimizer, optimizer_state)
