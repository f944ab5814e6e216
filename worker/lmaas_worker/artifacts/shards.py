"""Tensors that every rank writes and reads its own part of, with `torch.distributed.checkpoint`.

Every rank of the process group calls these together, each with its own state dict: under fsdp
its shards (DTensors), under ddp the full tensors, which DCP's planner then spreads over the ranks
so that each writes a part and none writes a tensor twice. No rank gathers a whole model.

The storage is torch's Hugging Face writer and reader for DCP: each rank writes one safetensors
file, `shard-0000R-model-00001-of-00001.safetensors` (none if the planner left it nothing), whose
header records where each of its pieces lies in the full tensor; the reader finds the pieces from
those headers (it lists the `*.safetensors` files and opens them with `safe_open`) and reshards
them onto whatever ranks load them. Joining pieces into whole files uses torch's consolidation
function for this storage, which torch does not export yet (`_consolidate_hf_safetensors`). DCP's default FileSystemWriter would add a `.metadata` file that its reader unpickles; this
storage writes none and unpickles nothing, and so can only hold tensors: the caller keeps anything
else in JSON beside them.

`write_huggingface_weights` then joins the pieces into the files a Hugging Face folder holds,
`model-0000N-of-0000M.safetensors` with `model.safetensors.index.json`: each rank writes whole
files (at least one file per rank), one tensor in memory at a time.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint import HuggingFaceStorageReader, HuggingFaceStorageWriter
from torch.distributed.checkpoint._consolidate_hf_safetensors import consolidate_safetensors_files_on_every_rank
from torch.nn.parallel import DistributedDataParallel

from .files import atomic_directory

MAX_FILE_BYTES = 5 * 2**30
"""The most bytes of weights in one file of a Hugging Face folder (transformers' hub convention)."""
PIECES_FOLDER = "sharded"


def distinct_state(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` without the names of tied parameters but the first (a language model's output head
    that shares the token embeddings): safetensors refuses two names for one tensor, and the model
    ties them again when it is loaded. `module` may be wrapped in DistributedDataParallel, whose
    names, unlike the state's, begin with "module."; fully_shard renames nothing."""
    if isinstance(module, DistributedDataParallel):
        module = module.module
    aliases = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    aliases -= {name for name, _ in module.named_parameters()}
    return {name: tensor for name, tensor in state.items() if name not in aliases}


@contextlib.contextmanager
def shared_atomic_directory(target: Path, is_main: bool) -> Iterator[Path]:
    """`atomic_directory` for a whole process group: rank 0 makes the temporary directory and, once
    every rank has left the block, renames it to `target`; every rank fills it."""
    with atomic_directory(target) if is_main else contextlib.nullcontext() as temporary:
        name = [str(temporary) if is_main else None]
        dist.broadcast_object_list(name, src=0)
        yield Path(name[0])
        dist.barrier()


def save_pieces(state: dict[str, torch.Tensor], directory: Path) -> None:
    """Each rank writes its part of `state` (a nested dict of tensors) into `directory`."""
    dcp.save(state, storage_writer=HuggingFaceStorageWriter(str(directory), save_distributed=True))


def load_pieces(state: dict[str, torch.Tensor], directory: Path) -> None:
    """Fill `state` (laid out like the state that was saved, on any number of ranks) in place."""
    dcp.load(state, storage_reader=HuggingFaceStorageReader(str(directory)))


def saved_names(directory: Path) -> set[str]:
    """The names of the tensors in `directory` (flattened: "model.lm.x.weight"), from the headers."""
    return set(HuggingFaceStorageReader(str(directory)).read_metadata().state_dict_metadata)


def file_plan(sizes: dict[str, int], world_size: int, max_file_bytes: int = MAX_FILE_BYTES) -> dict[str, int]:
    """{tensor name: 1-based file index}: consecutive tensors in files of about equal size, none over
    the bound unless one tensor is, and at least one file per rank (fewer only with fewer tensors)."""
    total = sum(sizes.values())
    files = min(len(sizes), max(world_size, math.ceil(total / max_file_bytes)))
    plan, index, filled = {}, 1, 0
    for left, (name, size) in zip(range(len(sizes), 0, -1), sizes.items()):
        if filled and (filled + size > total / files or left <= files - index):
            index, filled = index + 1, 0
        plan[name] = index
        filled += size
    return plan


def write_huggingface_weights(state: dict[str, torch.Tensor], directory: Path, world_size: int, is_main: bool) -> None:
    """Write `state` (full names, each rank its shards) as a Hugging Face folder's weight files and
    index into `directory`, which every rank sees."""
    sizes = [{name: math.prod(t.shape) * t.element_size() for name, t in state.items()}]
    dist.broadcast_object_list(sizes, src=0)  # one plan for all: the same names and global shapes
    plan = file_plan(sizes[0], world_size)
    pieces = directory / PIECES_FOLDER
    save_pieces(state, pieces)
    dist.barrier()  # every piece is on disk before any rank reads them
    consolidate_safetensors_files_on_every_rank(str(pieces), str(directory), plan)
    if is_main:
        shutil.rmtree(pieces)
