"""A node's cache of tokenized data: built once per node, memory-mapped by every rank on it.

An entry is a directory named after its key (the SHA-256 of what determines the tokens: the source
bytes' hash, the tokenizer's hash, the block length and the format's options) holding one `.npy`
file per array (never a pickle) and `key.json`, the key's parts in words. It is written to a
directory beside it and renamed into place, so a reader never sees half an entry, and two writers
of the same entry (two agents on one machine, say) both end up with a whole one.

`once_per_node`: the node's local rank 0 builds the entry unless it is there (in a pod the launcher
has usually built it already, checking the data before torchrun starts), every rank waits for it,
then maps it. Arrays are mapped copy-on-write, so the ranks of a node share the pages of one file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from lmaas_api import contract
from lmaas_api.errors import ConfigError

log = logging.getLogger(__name__)

KEY_FILE = "key.json"


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class TokenCache:
    def __init__(self, directory: Path):
        self.directory = directory

    def entry(self, key: str) -> Path:
        return self.directory / key

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        """The entry's arrays, memory-mapped; None when there is no such entry."""
        entry = self.entry(key)
        if not (entry / KEY_FILE).is_file():
            return None
        return {path.stem: torch.from_numpy(np.load(path, mmap_mode="c")) for path in sorted(entry.glob("*.npy"))}

    def store(self, key: str, parts: dict[str, Any], arrays: dict[str, torch.Tensor]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.directory))
        except OSError as error:
            raise ConfigError(
                contract.DATA_CACHE_ENV, f"{self.directory} is not a writable directory: {error.strerror or error}"
            ) from error
        try:
            for name, array in arrays.items():
                np.save(partial / f"{name}.npy", array.numpy(), allow_pickle=False)
            (partial / KEY_FILE).write_text(json.dumps(parts, sort_keys=True, indent=1))
            os.rename(partial, self.entry(key))
        except OSError:
            if not (self.entry(key) / KEY_FILE).is_file():
                raise
            # another writer renamed the same entry into place first
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def once_per_node(
    cache: TokenCache,
    parts: dict[str, Any],
    build: Callable[[], dict[str, torch.Tensor]],
    local_rank: int,
) -> dict[str, torch.Tensor]:
    """The arrays of the entry `parts` describe: built by local rank 0 if absent, mapped by every rank.

    A ConfigError while building reaches every rank (the ranks compare notes before mapping), so
    that all of them exit with it instead of some waiting for an entry that will never come.
    """
    key = cache_key(parts)
    failure: ConfigError | None = None
    if local_rank == 0:
        if cache.load(key) is not None:
            log.info(
                "tokenized data found in the node's cache: %s (its warnings were logged when it was built)",
                cache.entry(key),
            )
        else:
            try:
                cache.store(key, parts, build())
                log.info("tokenized data cached in %s", cache.entry(key))
            except ConfigError as error:
                failure = error
    if dist.is_initialized():
        notes: list[tuple[str, str] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(notes, None if failure is None else (failure.field, str(failure)))
        if failure is None:
            failure = next(
                (ConfigError(field, message.removeprefix(f"{field}: ")) for field, message in filter(None, notes)), None
            )
    if failure is not None:
        raise failure
    arrays = cache.load(key)
    if arrays is None:
        raise RuntimeError(f"the tokenized data {cache.entry(key)} was not there when local rank 0 said it was built")
    return arrays
