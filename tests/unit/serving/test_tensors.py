"""The V2 tensor codec: datatypes, values and shapes are checked, never silently coerced."""

from __future__ import annotations

import numpy as np
import pytest

from lmaas_worker.serve.errors import ClientError
from lmaas_worker.serve.tensors import (
    DATATYPES,
    TensorSpec,
    binary_to_array,
    conforms,
    datatype_of,
    json_to_array,
    reshape,
)


def rejected(function, *args) -> str:
    with pytest.raises(ClientError) as caught:
        function(*args)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_floats_from_flat_or_nested_json(datatype):
    array = json_to_array([[1, 2.5], [3, -4e-3]], datatype, "x")
    assert array.dtype == DATATYPES[datatype] and array.shape == (2, 2)
    assert reshape(json_to_array([1, 2.5, 3, 4], datatype, "x"), (2, 2), "x").shape == (2, 2)


@pytest.mark.parametrize(
    "datatype, value, ok",
    [
        ("INT8", 127, True),
        ("INT8", 128, False),
        ("INT8", -129, False),
        ("UINT8", -1, False),
        ("UINT8", 255, True),
        ("INT32", 2**31 - 1, True),
        ("INT32", 2**31, False),
        ("INT64", 2**63 - 1, True),
        ("UINT64", 2**64 - 1, True),
    ],
)
def test_integers_must_fit_their_datatype(datatype, value, ok):
    if ok:
        assert json_to_array([value], datatype, "x")[0] == value
    else:
        assert "out of the range" in rejected(json_to_array, [value], datatype, "x")


def test_fractions_strings_booleans_and_objects_are_refused_where_they_do_not_belong():
    assert "must be integers" in rejected(json_to_array, [1, 2.5], "INT64", "inputs[0].data")
    assert "inputs[0].data" in rejected(json_to_array, [1, 2.5], "INT64", "inputs[0].data")
    assert "strings" in rejected(json_to_array, ["1.5"], "FP32", "x")
    assert "booleans" in rejected(json_to_array, [True, False], "FP32", "x")
    assert "true/false" in rejected(json_to_array, [1, 0], "BOOL", "x")
    assert "ragged" in rejected(json_to_array, [[1, 2], [3]], "FP32", "x")
    assert "non-numeric" in rejected(json_to_array, [{"a": 1}], "FP32", "x")
    assert "beyond 64 bits" in rejected(json_to_array, [2**70], "INT64", "x")
    assert "a JSON array" in rejected(json_to_array, {"a": 1}, "FP32", "x")
    assert json_to_array([True, False], "BOOL", "x").dtype == np.bool_


def test_values_too_large_for_the_datatype_are_refused():
    assert "too large for FP32" in rejected(json_to_array, [1e39], "FP32", "x")
    assert "too large for FP16" in rejected(json_to_array, [70000.0], "FP16", "x")
    assert "too large for FP16" in rejected(json_to_array, [1, 70000], "FP16", "x")
    assert json_to_array([1e39], "FP64", "x")[0] == 1e39


def test_bytes_is_a_datatype_this_server_refuses():
    assert "BYTES is not supported" in rejected(json_to_array, ["a"], "BYTES", "x")
    assert "BYTES is not supported" in rejected(binary_to_array, b"a", "BYTES", (1,), "x")


def test_shapes():
    assert "does not fit shape [2, 3]" in rejected(reshape, np.zeros(5), (2, 3), "x")
    assert "does not fit" in rejected(reshape, np.zeros((3, 2)), (2, 3), "x")  # nested data must match exactly
    assert conforms((5, 64), (-1, 64)) and not conforms((5, 63), (-1, 64)) and not conforms((64,), (-1, 64))


def test_binary_data_little_endian_row_major():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(binary_to_array(values.astype("<f4").tobytes(), "FP32", (2, 3), "x"), values)
    ints = np.array([[1, -2]], dtype=np.int64)
    np.testing.assert_array_equal(binary_to_array(ints.astype("<i8").tobytes(), "INT64", (1, 2), "x"), ints)
    assert "needs 24" in rejected(binary_to_array, b"\0" * 20, "FP32", (2, 3), "x")
    nan = np.array([np.nan], dtype="<f4").tobytes()
    assert "NaN or infinity" in rejected(binary_to_array, nan, "FP32", (1,), "x")


def test_datatype_names_round_trip():
    for name, dtype in DATATYPES.items():
        assert datatype_of(np.zeros(1, dtype)) == name
    assert TensorSpec("input", "FP32", (-1, 64)).metadata() == {"name": "input", "datatype": "FP32", "shape": [-1, 64]}
