"""lmaas_worker.train.loop and .evaluate: the arithmetic of steps, epochs and evaluation shards."""
from lmaas_worker.train.evaluate import eval_shard
from lmaas_worker.train.loop import plan_training, step_seed


def test_a_plan_counts_micro_batches_optimizer_steps_and_epochs():
    plan = plan_training(samples_per_rank=719, batch_size=32, accumulation=1, epochs=3, max_steps=None)
    assert (plan.micro_batches_per_epoch, plan.steps_per_epoch, plan.total_steps, plan.total_epochs) == (23, 23, 69, 3)
    plan = plan_training(719, 32, accumulation=4, epochs=3, max_steps=None)
    assert (plan.steps_per_epoch, plan.total_steps) == (6, 18)  # the last step of an epoch takes 3 micro-batches


def test_max_steps_stops_within_an_epoch_but_never_extends_the_run():
    assert plan_training(719, 32, 1, epochs=3, max_steps=30).total_steps == 30
    assert plan_training(719, 32, 1, epochs=3, max_steps=30).total_epochs == 2
    assert plan_training(719, 32, 1, epochs=1, max_steps=500).total_steps == 23


def test_step_seeds_differ_by_rank_and_step_and_repeat():
    seeds = {step_seed(0, rank, step) for rank in range(4) for step in range(100)}
    assert len(seeds) == 400 and step_seed(7, 1, 5) == step_seed(7, 1, 5)


def test_evaluation_shards_count_every_sample_once_with_equal_lengths():
    for n, world in ((10, 3), (9, 3), (1, 4), (359, 2)):
        shards = [eval_shard(n, rank, world) for rank in range(world)]
        assert len({len(indices) for indices, _ in shards}) == 1
        counted = sorted(i for indices, weights in shards for i, w in zip(indices, weights) if w == 1.0)
        assert counted == list(range(n))
