"""lmaas_worker.train.plan: the data order, steps and epochs, and how far a run has got, on any world size."""
import pytest
from torch.utils.data import DistributedSampler

from lmaas_worker.train.plan import epoch_order, plan_training, position_after, rank_share


def test_from_the_start_of_an_epoch_each_rank_takes_what_distributed_sampler_gives_it():
    for size, world in ((10, 3), (1438, 2), (7, 4), (2, 5)):
        for rank in range(world):
            sampler = DistributedSampler(range(size), num_replicas=world, rank=rank, shuffle=True, seed=11)
            sampler.set_epoch(4)
            assert rank_share(epoch_order(size, 11, 4), 0, rank, world) == list(sampler)


@pytest.mark.parametrize("old_world,new_world", [(2, 1), (1, 3), (3, 2), (4, 4)])
def test_a_run_resumed_on_another_world_size_trains_exactly_the_samples_not_yet_consumed(old_world, new_world):
    size, batch = 103, 4
    order = epoch_order(size, 5, 1)
    for steps in range(0, 10):
        taken = [rank_share(order, 0, rank, old_world)[:steps * batch] for rank in range(old_world)]
        consumed = [i for ranks in zip(*taken) for i in ranks]  # set() would hide a repeat
        position = position_after(0, steps * batch, old_world, size)
        if position == size:
            break
        assert position == len(consumed)
        shares = [rank_share(order, position, rank, new_world) for rank in range(new_world)]
        assert len({len(share) for share in shares}) == 1  # every rank takes as many steps
        padding = len(shares[0]) * new_world - (size - position)
        rest = [i for ranks in zip(*shares) for i in ranks][:size - position]
        assert sorted(consumed + rest) == list(range(size))
        assert 0 <= padding < new_world


def test_a_plan_counts_optimizer_steps_and_epochs_at_the_world_size_it_continues_on():
    plan = plan_training(1438, world_size=2, batch_size=32, accumulation=1, epochs=3, max_steps=None)
    assert (plan.total_steps, plan.total_epochs, plan.total_samples) == (69, 3, 3 * 1438)
    plan = plan_training(1438, 2, 32, accumulation=4, epochs=3, max_steps=None)
    assert plan.total_steps == 18  # 23 micro-batches an epoch: the last step of an epoch takes 3
    # one epoch done on 2 ranks (23 steps), two left on 1 rank (45 steps each)
    assert plan_training(1438, 1, 32, 1, 3, None, step=23, epoch=1, position=0).total_steps == 23 + 90
    # 7 steps into epoch 2 on 2 ranks is 448 samples: 990 left take 31 steps on 1 rank
    assert plan_training(1438, 1, 32, 1, 3, None, step=30, epoch=1, position=448).total_steps == 30 + 31 + 45


def test_max_steps_stops_within_an_epoch_but_never_extends_the_run():
    assert plan_training(1438, 2, 32, 1, epochs=3, max_steps=30).total_steps == 30
    assert plan_training(1438, 2, 32, 1, epochs=3, max_steps=30).total_epochs == 2
    assert plan_training(1438, 2, 32, 1, epochs=1, max_steps=500).total_steps == 23
    resumed = plan_training(1438, 1, 32, 1, epochs=3, max_steps=60, step=30, epoch=1, position=448)
    assert (resumed.total_steps, resumed.total_epochs) == (60, 2)


def test_how_far_a_run_has_got_is_its_share_of_samples_or_of_max_steps_whichever_is_further():
    plan = plan_training(1000, 2, 10, 1, epochs=2, max_steps=None)
    assert plan.fraction_done(500, 25) == 0.25 and plan.fraction_done(2000, 100) == 1.0
    capped = plan_training(1000, 2, 10, 1, epochs=2, max_steps=50)
    assert capped.fraction_done(1000, 50) == 1.0 and capped.fraction_done(100, 5) == 0.1
    assert capped.fraction_done(900, 5) == 0.45
