"""Files on the output volume: directories written atomically, and files lmaas refuses to read.

`atomic_directory(target)` hands out a hidden temporary directory beside `target`; once filled,
every file in it and the directory itself are fsynced, and only then is it renamed to `target`,
replacing any previous one: a directory under its final name is complete. Artifacts and
checkpoints are written this way.

`refuse_pickles(directory)` raises UnsafeArtifactError naming the first file that is, or may be, a
pickle (`*.pt`, `*.pth`, `*.bin`, `*.pkl`, `*.pickle`, `*.ckpt`, a `*.safetensors` that is not one, or
any other file whose bytes begin like a pickle or a torch.save zip archive): lmaas reads weights with
safetensors only and never unpickles.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"
REPLACED_PREFIX = ".old-"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"


class UnsafeArtifactError(ValueError):
    """The artifact holds a file that only unpickling could read; lmaas never unpickles."""


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_directory(source: Path, target: Path) -> None:
    """Move the complete directory `source` to `target`, replacing any previous `target`.

    A reader sees either the old directory, briefly nothing, or the new one; never a partial one.
    """
    old = None
    if target.exists():
        old = target.with_name(f"{REPLACED_PREFIX}{target.name}-{os.getpid()}")
        os.rename(target, old)
    os.rename(source, target)
    fsync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """A temporary directory to fill; when the block ends without an error it replaces `target`,
    its files and itself fsynced first. After an error it stays, as after a crash, under a name
    that marks it incomplete (TEMPORARY_PREFIX); the next write of `target` removes it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{TEMPORARY_PREFIX}{target.name}-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    yield temporary
    for file in temporary.iterdir():
        fsync_path(file)
    fsync_path(temporary)
    replace_directory(temporary, target)


def refuse_pickles(directory: str | os.PathLike[str]) -> None:
    """Raise UnsafeArtifactError naming the first file in `directory` that is (or may be) a pickle."""
    for file in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        if file.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeArtifactError(
                f"{file}: a pickle-format file ({file.suffix}); lmaas loads safetensors only and never unpickles"
            )
        with file.open("rb") as stream:
            head = stream.read(8)
        if file.suffix == SAFETENSORS_SUFFIX:
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
