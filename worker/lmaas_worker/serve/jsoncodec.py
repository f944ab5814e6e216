"""JSON on the hot path: orjson when installed (several times faster, and it writes numpy arrays
directly), the standard library otherwise. Both refuse NaN and Infinity in requests, which are not
JSON, and write non-finite floats in responses as null.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    orjson = None

DecodeError: type[Exception] = orjson.JSONDecodeError if orjson is not None else ValueError


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


if orjson is not None:
    _OPTIONS = orjson.OPT_SERIALIZE_NUMPY

    def _default(value: Any) -> Any:
        if isinstance(value, np.ndarray):  # non-contiguous or of a dtype orjson does not write natively
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, default=_default, option=_OPTIONS)

else:  # pragma: no cover

    def _plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return _plain(value.tolist())
        if isinstance(value, np.generic):
            return _plain(value.item())
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: _plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_plain(v) for v in value]
        return value

    def loads(data: bytes | str) -> Any:
        return json.loads(data, parse_constant=_reject_constant)

    def dumps(value: Any) -> bytes:
        return json.dumps(_plain(value), separators=(",", ":"), allow_nan=False).encode()
