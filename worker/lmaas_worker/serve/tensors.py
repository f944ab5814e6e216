"""Typed tensors: the Open Inference Protocol's datatypes, and JSON or binary data to numpy and back.

Every dialect meets the model through numpy arrays whose dtype and shape were checked here, so a
client's mistake becomes a 400 naming the field, never an exception inside a forward pass.

Numeric datatypes are supported (BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64); BYTES is
recognised and refused. JSON data may be flat (row-major) or nested; binary data (the binary
tensor extension) is little-endian, row-major.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import bad_request

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
ALL_DATATYPES = (*DATATYPES, "BYTES")
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, V2 datatype and shape (-1 for a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    accepts: tuple[str, ...] = ()
    """Other datatypes this input accepts and converts (e.g. FP64 for an FP32 input)."""

    @property
    def dtype(self) -> np.dtype:
        return DATATYPES[self.datatype]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def datatype_of(array: np.ndarray) -> str:
    try:
        return _NAMES[array.dtype]
    except KeyError:
        raise TypeError(f"no V2 datatype for numpy dtype {array.dtype}") from None


def _dtype(datatype: str, where: str) -> np.dtype:
    """The numpy dtype of one of `ALL_DATATYPES` (requests are validated against them); BYTES is refused."""
    if datatype == "BYTES":
        raise bad_request(f"{where}: datatype BYTES is not supported by this model")
    return DATATYPES[datatype]


def json_to_array(data: Any, datatype: str, where: str) -> np.ndarray:
    """JSON numbers (flat or nested lists) as an array of `datatype`; 400 naming `where` otherwise.

    The values are checked, not coerced: strings, all-boolean data in a number tensor, fractions in
    an integer tensor and values out of the datatype's range are refused.
    """
    dtype = _dtype(datatype, where)
    if not isinstance(data, list):
        raise bad_request(f"{where}: data must be a JSON array of numbers, got {_kind(data)}")
    try:
        raw = np.asarray(data)
    except ValueError as error:
        if "inhomogeneous" in str(error):
            raise bad_request(f"{where}: data is a ragged nested array (rows of different lengths)") from None
        raise bad_request(f"{where}: data is not an array of numbers: {error}") from None
    kind = raw.dtype.kind
    if raw.size == 0:
        return np.zeros(raw.shape, dtype)
    if dtype.kind == "b":
        if kind != "b":
            raise bad_request(f"{where}: BOOL data must be true/false, got {_kind_of_array(raw)}")
        return raw
    if kind not in "iuf":
        raise bad_request(f"{where}: {datatype} data must be numbers, got {_kind_of_array(raw)}")
    if dtype.kind in "iu":
        if kind == "f":
            raise bad_request(
                f"{where}: {datatype} data must be integers, got a fraction or exponent (e.g. {_first_fraction(raw)})"
            )
        info = np.iinfo(dtype)
        low, high = raw.min(), raw.max()
        if low < info.min or high > info.max:
            raise bad_request(
                f"{where}: value {low if low < info.min else high} is out of the range of "
                f"{datatype} ({info.min}..{info.max})"
            )
        return raw.astype(dtype, copy=False)
    try:  # JSON holds no NaN or infinity (orjson refuses them), so only a narrowing cast can overflow
        with np.errstate(over="raise"):
            return raw.astype(dtype, copy=False)
    except FloatingPointError:
        raise bad_request(f"{where}: a value is too large for {datatype}") from None


def binary_to_array(chunk: bytes, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """Raw little-endian row-major bytes (the binary tensor extension) as an array of `shape`."""
    dtype = _dtype(datatype, where)
    expected = math.prod(shape) * dtype.itemsize
    if len(chunk) != expected:
        raise bad_request(
            f"{where}: binary data has {len(chunk)} bytes, but shape {list(shape)} of {datatype} needs {expected}"
        )
    array = np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise bad_request(f"{where}: data contains NaN or infinity")
    return array


def reshape(array: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """The data in `shape`: nested data must have that shape, flat data that many elements."""
    if array.shape == shape:
        return array
    if array.ndim == 1 and array.size == math.prod(shape):
        return array.reshape(shape)
    raise bad_request(
        f"{where}: data holds {array.size} values (shape {list(array.shape)}), which does not fit shape {list(shape)}"
    )


def conforms(shape: tuple[int, ...], spec_shape: tuple[int, ...]) -> bool:
    return len(shape) == len(spec_shape) and all(s == -1 or s == d for d, s in zip(shape, spec_shape))


def _first_fraction(raw: np.ndarray) -> str:
    flat = raw.reshape(-1)
    odd = flat[np.nonzero(flat != np.floor(flat))[0]]
    return repr(float(odd[0])) if odd.size else repr(float(flat[0]))


def _kind_of_array(raw: np.ndarray) -> str:
    return {
        "b": "booleans",
        "U": "strings",
        "S": "strings",
        "O": "mixed or non-numeric values (or integers beyond 64 bits)",
        "f": "numbers",
        "i": "integers",
        "u": "integers",
    }.get(raw.dtype.kind, str(raw.dtype))


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
