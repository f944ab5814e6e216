"""lmaas_worker.data.cache: tokenized data built once per node under a key of everything that shapes
it, stored as .npy files (no pickle), mapped by every rank, whole or not at all."""

import json

import numpy as np
import pytest
import torch

from lmaas_api import contract
from lmaas_api.errors import ConfigError
from lmaas_worker.data.cache import KEY_FILE, TokenCache, cache_key, once_per_node

PARTS = {"data": "ab12", "tokenizer": "cd34", "sequenceLength": 8, "format": "text", "validationFraction": 0.1}


class Builder:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"train": torch.arange(20), "held-out": torch.arange(20, 30)}


def test_the_node_builds_once_and_then_maps_the_same_arrays(tmp_path):
    cache, build = TokenCache(tmp_path), Builder()
    first = once_per_node(cache, PARTS, build, local_rank=0)
    again = once_per_node(cache, PARTS, build, local_rank=0)
    assert build.calls == 1
    assert first.keys() == again.keys() == {"train", "held-out"}
    assert torch.equal(again["train"], torch.arange(20)) and torch.equal(again["held-out"], torch.arange(20, 30))
    entry = cache.entry(cache_key(PARTS))
    assert json.loads((entry / KEY_FILE).read_text()) == PARTS
    assert np.array_equal(np.load(entry / "train.npy", allow_pickle=False), np.arange(20))


def test_anything_that_shapes_the_tokens_makes_another_entry(tmp_path):
    cache, build = TokenCache(tmp_path), Builder()
    once_per_node(cache, PARTS, build, local_rank=0)
    for change in ({"tokenizer": "ef56"}, {"sequenceLength": 16}, {"data": "0000"}, {"textField": "body"}):
        once_per_node(cache, {**PARTS, **change}, build, local_rank=0)
    assert build.calls == 5 and len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 5


def test_a_rank_that_is_not_the_nodes_first_never_builds(tmp_path):
    build = Builder()
    with pytest.raises(RuntimeError, match="was not there"):
        once_per_node(TokenCache(tmp_path), PARTS, build, local_rank=1)
    assert build.calls == 0
    once_per_node(TokenCache(tmp_path), PARTS, build, local_rank=0)
    assert torch.equal(once_per_node(TokenCache(tmp_path), PARTS, build, local_rank=1)["train"], torch.arange(20))
    assert build.calls == 1


def test_mapped_arrays_are_copy_on_write_and_a_second_writer_leaves_the_entry_whole(tmp_path):
    cache = TokenCache(tmp_path)
    key = cache_key(PARTS)
    cache.store(key, PARTS, Builder()())
    loaded = cache.load(key)
    loaded["train"][0] = 99  # a rank's own page, never the file
    cache.store(key, PARTS, {"train": torch.zeros(3, dtype=torch.int64)})  # lost the race to rename
    assert torch.equal(cache.load(key)["train"], torch.arange(20))
    assert [p.name for p in tmp_path.iterdir()] == [key]  # no partial directory left behind


def test_a_cache_directory_that_cannot_be_written_names_its_variable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as error:
        once_per_node(TokenCache(blocker / "cache"), PARTS, Builder(), local_rank=0)
    assert error.value.field == contract.DATA_CACHE_ENV
