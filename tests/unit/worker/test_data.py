"""lmaas_worker.data: the builtin data sets and the factory protocol."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from lmaas_api.errors import ConfigError
from lmaas_api.spec import DatasetDefinition
from lmaas_worker.data import DataBundle, build_datasets, digits, shakespeare
from lmaas_worker.data.batches import batches


def test_the_digits_split_is_disjoint_complete_and_the_same_for_the_same_seed():
    train, val = digits.split_indices(1797, 0.2, seed=1)
    assert len(val) == 359 and len(train) == 1797 - 359
    assert not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(1797))
    again_train, again_val = digits.split_indices(1797, 0.2, seed=1)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    assert not np.array_equal(val, digits.split_indices(1797, 0.2, seed=2)[1])


def test_a_digits_test_split_is_seen_by_neither_training_nor_validation():
    def rows(dataset):
        return sorted(map(tuple, torch.cat([dataset.tensors[0], dataset.tensors[1][:, None]], dim=1).tolist()))

    whole = build_datasets(DatasetDefinition(builtin="digits"), seed=3)
    tuning = build_datasets(DatasetDefinition(builtin="digits", args={"test_fraction": 0.2}), seed=3)
    reporting = build_datasets(
        DatasetDefinition(builtin="digits", args={"test_fraction": 0.2, "held_out": "test"}), seed=3
    )
    assert len(reporting.val) == 359 and len(tuning.val) == 288 and len(tuning.train) == 1797 - 359 - 288
    assert rows(reporting.train) == rows(tuning.train)  # the same training samples either way
    # training, validation and test samples together are every image, each once
    assert sorted(rows(tuning.train) + rows(tuning.val) + rows(reporting.val)) == sorted(
        rows(whole.train) + rows(whole.val)
    )
    with pytest.raises(ConfigError, match="test_fraction"):
        build_datasets(DatasetDefinition(builtin="digits", args={"held_out": "test"}), seed=3)


def test_digits_are_real_normalised_8x8_images_of_ten_classes():
    bundle = build_datasets(DatasetDefinition(builtin="digits", validation_fraction=0.25), seed=0)
    x, y = bundle.train.tensors
    assert x.shape[1] == 64 and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert sorted(y.unique().tolist()) == list(range(10))
    assert len(bundle.val) == round(1797 * 0.25)
    assert bundle.num_classes == 10 and bundle.class_labels == [str(d) for d in range(10)]


def test_shakespeare_is_shipped_verse_cut_into_shifted_windows():
    text = shakespeare.text()
    assert len(text) > 20_000
    assert "Shall I compare thee to a summer's day?" in text
    bundle = build_datasets(DatasetDefinition(builtin="shakespeare", args={"stride": 3}), seed=0, context=32)
    assert bundle.task == "language-modeling" and bundle.vocab == sorted(set(text))
    x, y = bundle.train[5]
    assert x.shape == y.shape == (32,) and torch.equal(x[1:], y[:-1])
    decoded = "".join(bundle.vocab[i] for i in x.tolist())
    assert decoded == text[15:47]
    cut = int(len(text) * 0.8)
    assert len(bundle.val) == (len(text) - cut - 1) // 32  # validation windows do not overlap
    first_val = "".join(bundle.vocab[i] for i in bundle.val[0][0].tolist())
    assert first_val == text[cut : cut + 32]


def test_a_context_too_long_for_the_text_is_a_configuration_error():
    with pytest.raises(ConfigError, match="spec.dataset.args"):
        build_datasets(DatasetDefinition(builtin="shakespeare", validation_fraction=0.01), seed=0, context=5000)


def make_pair(size: int = 10, seed: int = 0):
    train = TensorDataset(torch.randn(size, 3), torch.randint(0, 3, (size,)))
    train.class_labels = ["a", "b", "c"]
    return train, TensorDataset(torch.randn(4, 3), torch.randint(0, 3, (4,)))


def make_bundle():
    train, val = make_pair()
    return DataBundle(train, val, num_classes=3)


def make_nothing():
    return [1, 2, 3]


def make_empty():
    return TensorDataset(torch.zeros(0, 3), torch.zeros(0)), TensorDataset(torch.zeros(1, 3), torch.zeros(1))


def test_a_data_factory_returns_a_pair_whose_attributes_describe_it():
    bundle = build_datasets(DatasetDefinition(factory=f"{__name__}:make_pair", args={"size": 12}), seed=0)
    assert len(bundle.train) == 12 and bundle.class_labels == ["a", "b", "c"] and bundle.num_classes == 3
    assert bundle.input_spec == {"shape": [3], "dtype": "float32"}
    assert build_datasets(DatasetDefinition(factory=f"{__name__}:make_bundle"), seed=0).num_classes == 3


@pytest.mark.parametrize(
    "factory,message",
    [
        ("make_nothing", "must return (train, validation)"),
        ("make_empty", "the training split is empty"),
        ("absent", "has no attribute 'absent'"),
    ],
)
def test_a_data_factory_breaking_the_protocol_is_a_configuration_error(factory, message):
    with pytest.raises(ConfigError, match="spec.dataset") as error:
        build_datasets(DatasetDefinition(factory=f"{__name__}:{factory}"), seed=0)
    assert message in str(error.value)


class _Samples(torch.utils.data.Dataset):
    """The same samples as a TensorDataset, fetched one by one."""

    def __init__(self, tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


def test_in_memory_batches_hold_the_same_samples_in_the_same_order_as_collated_ones():
    tensors = (torch.randn(23, 4, 3), torch.randint(0, 10, (23,)))
    indices = [5, 0, 22, 7, 7, 13, 1, 9, 2]
    gathered = list(batches(TensorDataset(*tensors), indices, 4))
    collated = list(batches(_Samples(tensors), indices, 4))
    assert [len(x) for x, _ in gathered] == [4, 4, 1]
    for (x, y), (cx, cy) in zip(gathered, collated, strict=True):
        assert torch.equal(x, cx) and torch.equal(y, cy) and x.dtype == cx.dtype and y.dtype == cy.dtype
    assert torch.equal(gathered[0][0][2], tensors[0][22]) and gathered[2][1].item() == tensors[1][2].item()
    assert list(batches(TensorDataset(*tensors), [], 4)) == []


def test_a_tensor_dataset_subclass_is_fetched_through_its_own_getitem():
    class Scaled(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x * 100, y

    tensors = (torch.ones(5, 2), torch.zeros(5, dtype=torch.long))
    (x, _), *_ = list(batches(Scaled(*tensors), [0, 1, 2], 3))
    assert torch.equal(x, torch.full((3, 2), 100.0))
