"""Model artifacts: a directory that rebuilds a module without running any pickle.

    model.safetensors   the weights: full fp32 state dict, contiguous tensors
    model.json          the model card: format tag, how to rebuild the module (builtin or
                        "pkg.mod:fn" plus arguments), task, input, classes or vocabulary, dtype,
                        quantization, the data set, the producing resource, creation time
    metrics.json        final figures of the run
    curves.png          loss and held-out metric against the step (for people)

`save_artifact` writes into a temporary directory and renames it into place, so a half-written
artifact never appears. `load_model(path, artifact_code=...)` returns `(module, card)`; it reads
weights with safetensors only and refuses an artifact that contains a pickle (`*.pt`, `*.pth`,
`*.bin`, `*.pkl`, `*.pickle`, or any file whose bytes begin like a pickle or a torch.save zip
archive), and a card whose `model.factory` the loading resource does not allow (see
`lmaas_worker.models`: by default only builtin models load).
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lmaas_api import contract
from lmaas_api.spec import ArtifactCodePolicy

from .curves import plot_curves
from .models import rebuild_model
from .train.checkpoint import fsync_path, replace_directory

CURVES_FILE = "curves.png"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")


class UnsafeArtifactError(ValueError):
    """The artifact holds a file that only unpickling could read; lmaas never unpickles."""


def save_artifact(directory: Path, state_dict: dict[str, torch.Tensor], card: dict[str, Any],
                  metrics: dict[str, Any], history: dict[str, Any] | None = None) -> int:
    """Write the artifact to `directory` atomically; return the size of the weights file in bytes."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.with_name(f".tmp-{directory.name}-{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    weights = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state_dict.items()}
    save_file(weights, temporary / contract.WEIGHTS_FILE, metadata={"format": "pt", "lmaas": contract.ARTIFACT_FORMAT})
    (temporary / contract.MODEL_CARD_FILE).write_text(json.dumps(card, indent=2, allow_nan=False) + "\n")
    (temporary / contract.METRICS_FILE).write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    names = [contract.WEIGHTS_FILE, contract.MODEL_CARD_FILE, contract.METRICS_FILE]
    if history is not None:
        plot_curves(history, temporary / CURVES_FILE, title=card.get("producer", {}).get("name") or "")
        names.append(CURVES_FILE)
    for name in names:
        fsync_path(temporary / name)
    fsync_path(temporary)
    replace_directory(temporary, directory)
    return (directory / contract.WEIGHTS_FILE).stat().st_size


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    card_path = Path(path) / contract.MODEL_CARD_FILE
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{card_path}: not an lmaas artifact (no {contract.MODEL_CARD_FILE})") from None
    if card.get("format") != contract.ARTIFACT_FORMAT:
        raise ValueError(f"{card_path}: format {card.get('format')!r} is not {contract.ARTIFACT_FORMAT!r}")
    return card


def refuse_pickles(path: str | os.PathLike) -> None:
    """Raise UnsafeArtifactError naming the first file in the artifact that is (or may be) a pickle."""
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        if file.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeArtifactError(f"{file}: a pickle-format file ({file.suffix}); lmaas loads safetensors only "
                                      f"and never unpickles")
        with file.open("rb") as stream:
            head = stream.read(8)
        if file.name == contract.WEIGHTS_FILE:
            _check_safetensors(file, head)
        elif _looks_pickled(head):
            raise UnsafeArtifactError(f"{file}: starts like a pickle or a torch.save archive; lmaas never unpickles")


def _looks_pickled(head: bytes) -> bool:
    # pickle protocols 2-5 start with PROTO (0x80) and the protocol number; torch.save writes a zip
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith(b"PK\x03\x04")


def _check_safetensors(file: Path, head: bytes) -> None:
    """A safetensors file starts with the length of its JSON header; anything else is refused."""
    size = file.stat().st_size
    valid = False
    if len(head) == 8:
        (header_length,) = struct.unpack("<Q", head)
        if 0 < header_length <= size - 8:
            with file.open("rb") as stream:
                stream.seek(8)
                valid = stream.read(1) == b"{"
    if valid:
        return
    if _looks_pickled(head):
        raise UnsafeArtifactError(f"{file}: a pickle or torch.save archive, not safetensors; lmaas never unpickles")
    raise UnsafeArtifactError(f"{file}: not a safetensors file")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", *,
               artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the module an artifact describes and load its weights; returns (module in eval mode, card).

    Raises UnsafeArtifactError if any file in the artifact is a pickle, FileNotFoundError or
    ValueError if `path` is not an lmaas artifact, ConfigError if its card names a factory that
    `artifact_code` does not allow.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such artifact directory")
    refuse_pickles(root)
    card = read_card(root)
    if card.get("compression"):
        # Integer, bitmask-sparse or structurally pruned weights; imported here so that importing
        # artifacts never imports the compression package.
        from .compress.storage import load_compressed

        return load_compressed(root, card, device, artifact_code=artifact_code), card
    if card.get("quantization"):
        raise ValueError(f"{root}: a {card['quantization']} quantized artifact; load it with the compression tools")
    module = rebuild_model(card["model"], artifact_code)
    state = load_file(root / contract.WEIGHTS_FILE, device=str(device))
    module.load_state_dict(state, strict=True)
    return module.to(device).eval(), card
