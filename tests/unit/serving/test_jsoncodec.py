"""The JSON codec behaves the same with orjson and with the standard library's json."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

import lmaas_worker.serve.jsoncodec as jsoncodec


@pytest.fixture(params=["orjson", "json"])
def codec(request, monkeypatch):
    if request.param == "json":
        monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now fails
    elif importlib.util.find_spec("orjson") is None:
        pytest.skip("orjson is not installed")
    module = importlib.reload(jsoncodec)
    yield module
    monkeypatch.undo()
    importlib.reload(jsoncodec)


def test_round_trip_with_numpy_arrays(codec):
    document = {"a": np.array([[1.5, 2.0]], dtype=np.float32), "b": np.arange(3), "c": np.int64(4), "d": "x"}
    assert codec.loads(codec.dumps(document)) == {"a": [[1.5, 2.0]], "b": [0, 1, 2], "c": 4, "d": "x"}


def test_non_finite_floats_are_written_as_null(codec):
    values = np.array([np.nan, np.inf, 1.0], dtype=np.float32)
    assert codec.loads(codec.dumps({"v": values, "f": float("nan")})) == {"v": [None, None, 1.0], "f": None}


@pytest.mark.parametrize("text", [b"[NaN]", b"[Infinity]", b"{", b"\xff"])
def test_invalid_json_is_refused(codec, text):
    with pytest.raises((codec.DecodeError, ValueError, UnicodeDecodeError)):
        codec.loads(text)
