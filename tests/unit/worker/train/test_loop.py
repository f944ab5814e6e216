"""lmaas_worker.train.loop and .evaluate: step seeds and evaluation shards."""

from lmaas_worker.train.evaluate import eval_shard
from lmaas_worker.train.loop import step_seed


def test_step_seeds_differ_by_rank_and_step_and_repeat():
    seeds = {step_seed(0, rank, step) for rank in range(4) for step in range(100)}
    assert len(seeds) == 400 and step_seed(7, 1, 5) == step_seed(7, 1, 5)


def test_evaluation_shards_count_every_sample_once_with_equal_lengths():
    for n, world in ((10, 3), (9, 3), (1, 4), (359, 2)):
        shards = [eval_shard(n, rank, world) for rank in range(world)]
        assert len({len(indices) for indices, _ in shards}) == 1
        counted = sorted(i for indices, weights in shards for i, w in zip(indices, weights) if w == 1.0)
        assert counted == list(range(n))
