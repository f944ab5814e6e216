"""Checkpoints: safetensors weights and optimizer state plus a JSON sidecar, written atomically.

Layout under `$LMAAS_OUTPUT_DIR/checkpoints/`:

    step-00000100/model.safetensors      full fp32 model state (fsdp gathers it on rank 0)
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

Only rank 0 touches the files. Saving gathers full state dicts on rank 0
(`get_model_state_dict`/`get_optimizer_state_dict` with `full_state_dict=True, cpu_offload=True`);
loading hands rank 0's full state dicts to `set_*_state_dict(..., broadcast_from_rank0=True)`, which
scatters them into DDP replicas or FSDP shards, so other nodes need not see the output volume.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
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

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "lmaas.checkpoint/v3"
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

    def read(self, checkpoint: Checkpoint) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        sidecar = json.loads((checkpoint.path / STATE_FILE).read_text())
        if sidecar.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(
                "spec.checkpoint.resume",
                f"the checkpoint {checkpoint.path.name} was written by another version of lmaas "
                f"(format {sidecar.get('format')!r}; this one reads {CHECKPOINT_FORMAT!r}) and cannot "
                "be resumed: set checkpoint.resume to false to start afresh (which removes the "
                "checkpoints), or remove them from the output",
            )
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


# --- collective: every rank calls these -------------------------------------------------------

_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
_SCATTER = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)


def gather_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full model state on rank 0 (on CPU); an empty dict on other ranks of a sharded model."""
    return get_model_state_dict(model, options=_GATHER)


def gather_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return gather_model_state(model), get_optimizer_state_dict(model, optimizer, options=_GATHER)


def scatter_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
) -> None:
    """Load rank 0's full state dicts into every rank (other ranks pass empty dicts)."""
    set_model_state_dict(model, model_state, options=_SCATTER)
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=_SCATTER)
