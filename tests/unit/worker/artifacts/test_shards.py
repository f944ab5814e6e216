"""lmaas_worker.artifacts.shards: how a Hugging Face folder's weights are split into files."""

from lmaas_worker.artifacts.shards import file_plan


def files_of(plan: dict[str, int]) -> list[list[str]]:
    return [[name for name, index in plan.items() if index == i] for i in range(1, max(plan.values()) + 1)]


def test_every_rank_gets_a_file_of_consecutive_tensors_of_about_equal_size():
    sizes = {f"layers.{i}.weight": 100 for i in range(8)}
    assert files_of(file_plan(sizes, world_size=4)) == [
        ["layers.0.weight", "layers.1.weight"],
        ["layers.2.weight", "layers.3.weight"],
        ["layers.4.weight", "layers.5.weight"],
        ["layers.6.weight", "layers.7.weight"],
    ]


def test_a_large_model_is_split_under_the_bound_whatever_the_ranks():
    sizes = {f"layers.{i}.weight": 3 for i in range(5)}
    plan = file_plan(sizes, world_size=1, max_file_bytes=6)
    assert all(sum(sizes[name] for name in names) <= 6 for names in files_of(plan))
    assert list(plan.values()) == sorted(plan.values())  # consecutive tensors share a file


def test_a_tensor_larger_than_a_share_gets_a_file_of_its_own_and_no_file_is_empty():
    plan = file_plan({"embed": 1000, "norm": 1, "head": 10}, world_size=2)
    assert files_of(plan) == [["embed"], ["norm", "head"]]
    assert file_plan({"only": 10}, world_size=4) == {"only": 1}  # fewer tensors than ranks
