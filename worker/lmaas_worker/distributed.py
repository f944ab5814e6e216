"""The distributed context: torchrun's environment in, a process group and a device out.

Under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT set by the agent) the process
group is initialised from the environment. Without torchrun the worker is one process: a
world of size 1 on an in-memory store, so that ddp and fsdp code paths stay the same.
LMAAS_BACKEND (set by the operator) picks gloo or nccl; the default is nccl when CUDA is
available, gloo otherwise.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lmaas_api.errors import ConfigError

log = logging.getLogger(__name__)

BACKEND_ENV = "LMAAS_BACKEND"


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    launched: bool
    """True under torchrun, False for a single process started directly."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return "RANK" in env and "WORLD_SIZE" in env


def global_rank(environ: dict[str, str] | None = None) -> int:
    """This process's rank before any process group exists (0 outside torchrun)."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("RANK", "0"))
    except ValueError:
        return 0


def choose_backend(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    backend = env.get(BACKEND_ENV) or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ConfigError(BACKEND_ENV, f"must be gloo or nccl, got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError(BACKEND_ENV, "nccl needs a CUDA device and none is visible")
    return backend


def init_distributed(environ: dict[str, str] | None = None) -> DistributedContext:
    env = os.environ if environ is None else environ
    backend = choose_backend(env)
    launched = launched_by_torchrun(env)
    local_rank = int(env.get("LOCAL_RANK", "0")) if launched else 0
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    restartable = env.get("TORCHELASTIC_MAX_RESTARTS", "0") != "0"
    if launched and restartable and env.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        log.warning(
            "torchrun shares its rendezvous store with the workers; restarted workers may read the "
            "previous attempt's addresses and fail to connect (pytorch/pytorch#135712). Set "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment."
        )
    if launched:
        dist.init_process_group(backend, device_id=device if backend == "nccl" else None)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    context = DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        backend=backend,
        device=device,
        launched=launched,
    )
    log.info(
        "rank %d of %d, backend %s, device %s%s",
        context.rank,
        context.world_size,
        backend,
        device,
        "" if launched else " (single process, no torchrun)",
    )
    return context


def close_distributed(wait_for_peers: bool = False) -> None:
    """Leave the process group; with `wait_for_peers`, only once every rank has got here."""
    if not dist.is_initialized():
        return
    if wait_for_peers:
        dist.barrier()
    dist.destroy_process_group()
    # A gloo worker thread drops its last reference to a collective just after the caller saw the
    # collective complete, and needs the GIL to do so. If the interpreter is already shutting down,
    # that thread is killed mid-destructor and the process aborts ("terminate called without an
    # active exception"). Releasing the GIL for a moment lets those threads finish first.
    time.sleep(0.05)
