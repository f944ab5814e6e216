"""The baseline: a plain, hand-written torchrun DDP training script, nothing from lmaas.

What a user would write by hand: scikit-learn's digits scaled to [0, 1], the same 80/20
split, an MLP (Linear-ReLU per hidden layer, then a Linear to 10 classes), DistributedSampler,
DataLoader, AdamW, a fixed number of steps, rank 0 printing the loss every 10 steps. The same
pauses as the worker's run: a checkpoint (model and optimizer state, written by rank 0 and
fsynced) every `--checkpoint-every` steps and after the last, and a held-out accuracy at the end.
On exit rank 0 prints one JSON line: samples/s of the training loop and of every 10 steps (checkpoints
left out), steps, final loss and accuracy.

    torchrun --nproc-per-node 2 bench/train/baseline_ddp.py --hidden 128 64 --batch-size 32 --steps 300 \
        --checkpoint-every 100 --checkpoint-dir /tmp/baseline-checkpoints
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    args = parser.parse_args()

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)

    digits = load_digits()
    x = torch.from_numpy(digits.data.astype(np.float32) / 16.0)
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = np.random.default_rng(args.seed).permutation(len(y))
    train, held_out = np.sort(order[round(len(y) * 0.2) :]), np.sort(order[: round(len(y) * 0.2)])
    dataset = TensorDataset(x[train], y[train])

    layers, width = [], 64
    for size in args.hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    model = DistributedDataParallel(nn.Sequential(*layers, nn.Linear(width, 10)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)

    step, epoch, samples, loss = 0, 0, 0, None
    intervals = []  # samples/s of every 10 steps, as lmaas train reports them
    started = mark = time.perf_counter()
    while step < args.steps:
        sampler.set_epoch(epoch)
        for inputs, labels in loader:
            loss = nn.functional.cross_entropy(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            samples += len(inputs) * world
            if step % 10 == 0 and rank == 0:
                now = time.perf_counter()  # the print below counts in the next interval, as in lmaas
                intervals.append(10 * len(inputs) * world / (now - mark))
                mark = now
                print(f"step {step} loss {loss.item():.4f}", flush=True)
            if step % args.checkpoint_every == 0 or step == args.steps:
                paused = time.perf_counter()
                save_checkpoint(args.checkpoint_dir, step, model, optimizer, rank)
                mark += time.perf_counter() - paused  # intervals leave checkpoints out, as in lmaas
            if step == args.steps:
                break
        epoch += 1
    seconds = time.perf_counter() - started
    accuracy = held_out_accuracy(model, x[held_out], y[held_out], rank, world)
    peak = [None] * world
    dist.all_gather_object(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    if rank == 0:
        print(
            json.dumps(
                {
                    "samplesPerSecond": samples / seconds,
                    "trainSeconds": seconds,
                    "steps": step,
                    "samples": samples,
                    "finalLoss": loss.item(),
                    "accuracy": accuracy,
                    "peakRssBytesPerRank": peak,
                    "intervalSamplesPerSecond": intervals,
                }
            ),
            flush=True,
        )
    dist.barrier()
    dist.destroy_process_group()
    time.sleep(0.05)


def save_checkpoint(directory: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, rank: int) -> None:
    if rank != 0:
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step-{step:08d}.pt"
    with path.open("wb") as file:
        torch.save({"model": model.module.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, file)
        file.flush()
        os.fsync(file.fileno())


@torch.no_grad()
def held_out_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rank: int, world: int) -> float:
    model.eval()
    hits = (model(x[rank::world]).argmax(dim=1) == y[rank::world]).sum().double()
    dist.all_reduce(hits)
    return 100 * hits.item() / len(y)


if __name__ == "__main__":
    main()
