"""lmaas_worker.train.plan: the data order, steps and epochs, and how far a run has got, on any world size."""

import pytest
from torch.utils.data import DistributedSampler

from lmaas_worker.train.plan import epoch_end, epoch_order, plan_training, position_after, rank_share


def test_from_the_start_of_an_epoch_each_rank_takes_what_distributed_sampler_gives_it():
    for size, world in ((10, 3), (1438, 2), (7, 4), (2, 5)):
        for rank in range(world):
            sampler = DistributedSampler(range(size), num_replicas=world, rank=rank, shuffle=True, seed=11)
            sampler.set_epoch(4)
            assert rank_share(epoch_order(size, 11, 4), 0, size, rank, world) == list(sampler)


@pytest.mark.parametrize("old_world,new_world", [(2, 1), (1, 3), (3, 2), (4, 4)])
def test_a_run_resumed_on_another_world_size_trains_exactly_the_samples_not_yet_consumed(old_world, new_world):
    size, batch = 103, 4
    order = epoch_order(size, 5, 1)
    for steps in range(0, 10):
        taken = [rank_share(order, 0, size, rank, old_world)[: steps * batch] for rank in range(old_world)]
        consumed = [i for ranks in zip(*taken) for i in ranks]  # set() would hide a repeat
        position = position_after(0, steps * batch, old_world, size)
        if position == size:
            break
        assert position == len(consumed)
        shares = [rank_share(order, position, size, rank, new_world) for rank in range(new_world)]
        assert len({len(share) for share in shares}) == 1  # every rank takes as many steps
        padding = len(shares[0]) * new_world - (size - position)
        rest = [i for ranks in zip(*shares) for i in ranks][: size - position]
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


def test_max_steps_counts_steps_of_the_world_size_the_run_started_on():
    # 100 steps on 2 ranks are more than 3 epochs (69 steps): the run trains 3 epochs, however resumed
    straight = plan_training(1438, 2, 32, 1, epochs=3, max_steps=100)
    assert (straight.total_steps, straight.total_epochs, straight.total_samples) == (69, 3, 3 * 1438)
    resumed = plan_training(1438, 1, 32, 1, 3, 100, step=23, epoch=1, position=0, first_world_size=2)
    assert (resumed.total_steps, resumed.total_epochs, resumed.total_samples) == (23 + 90, 3, 3 * 1438)
    assert resumed.fraction_done(3 * 1438) == 1.0 and resumed.fraction_done(1438) == straight.fraction_done(1438)
    # 30 steps on 2 ranks end 7 steps of 64 samples into epoch 2: on 1 rank after step 23, 448 samples
    # are 14 steps of 32; on 3 ranks, 150 samples per rank, 5 steps (the last one shorter)
    assert plan_training(1438, 2, 32, 1, 3, 30).total_samples == 1438 + 448
    for world, total_steps in ((1, 23 + 14), (3, 23 + 5), (2, 30)):
        plan = plan_training(1438, world, 32, 1, 3, 30, step=23, epoch=1, position=0, first_world_size=2)
        assert (plan.total_steps, plan.total_epochs, plan.total_samples) == (total_steps, 2, 1438 + 448)


def train(size, world, batch, accumulation, epochs, max_steps, first_world=None, at=(0, 0, 0), stop=None):
    """Take steps as the training loop does, from `at` = (step, epoch, position) on `world` ranks,
    until the plan's last step or step `stop`: returns where the run stands and the samples each
    step consumed, as (epoch, index into that epoch's order) pairs."""
    step, epoch, position = at
    plan = plan_training(size, world, batch, accumulation, epochs, max_steps, step, epoch, position, first_world)
    consumed = []
    while step < plan.total_steps and step != stop:
        end = epoch_end(plan.total_samples, size, epoch)
        share = len(rank_share(list(range(size)), position, end, 0, world))
        start = position
        taken = 0
        while taken < share and step < plan.total_steps and step != stop:
            taken = min(share, taken + batch * accumulation)
            position = position_after(start, taken, world, end)
            step += 1
        consumed += [(epoch, i) for i in range(start, position)]
        epoch, position = (epoch + 1, 0) if position == size else (epoch, position)
    return (step, epoch, position), consumed, plan


@pytest.mark.parametrize("first,then", [(2, 1), (1, 2), (3, 2), (2, 5), (4, 4)])
@pytest.mark.parametrize("max_steps", [None, 1, 7, 13, 30, 1000])
def test_a_resumed_run_trains_exactly_the_samples_an_uninterrupted_one_trains(first, then, max_steps):
    size, batch, accumulation, epochs = 103, 4, 2, 3
    (steps, _, _), straight, plan = train(size, first, batch, accumulation, epochs, max_steps)
    assert steps == plan.total_steps == (min(max_steps, steps) if max_steps else steps)
    assert len(straight) == len(set(straight)) == plan.total_samples
    for stop in range(0, steps + 1, 3):
        at, before, _ = train(size, first, batch, accumulation, epochs, max_steps, stop=stop)
        (step, epoch, position), after, resumed = train(
            size, then, batch, accumulation, epochs, max_steps, first_world=first, at=at
        )
        assert before + after == straight
        assert step == resumed.total_steps and epoch * size + position == resumed.total_samples
        assert resumed.total_epochs == plan.total_epochs


def test_how_far_a_run_has_got_is_its_share_of_the_samples_it_trains():
    plan = plan_training(1000, 2, 10, 1, epochs=2, max_steps=None)
    assert plan.fraction_done(500) == 0.25 and plan.fraction_done(2000) == 1.0
    capped = plan_training(1000, 2, 10, 1, epochs=2, max_steps=50)  # 50 steps of 20 samples
    assert capped.total_samples == 1000
    assert capped.fraction_done(1000) == 1.0 and capped.fraction_done(100) == 0.1
    # the same point on the schedule however the run is resumed
    resumed = plan_training(1000, 1, 10, 1, 2, 50, step=25, epoch=0, position=500, first_world_size=2)
    assert resumed.fraction_done(900) == capped.fraction_done(900) == 0.9
