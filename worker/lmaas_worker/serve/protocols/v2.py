"""The Open Inference Protocol (KServe V2, Triton's HTTP/REST API).

    GET  /v2                       server metadata: {"name", "version", "extensions"}
    GET  /v2/health/live           200 {"live": true} while the process runs
    GET  /v2/health/ready          200 {"ready": true} once loaded and warmed up; 503 before, and
                                   from SIGTERM on (the spec allows any 4xx; probes only need non-200)
    GET  /v2/models/<m>            model metadata: name, versions, platform, inputs, outputs
    GET  /v2/models/<m>/ready      as /v2/health/ready, for the model
    POST /v2/models/<m>/infer      typed tensors in, typed tensors out

An inference request is `{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype",
"data"}], "outputs"?: [{"name", "parameters"?}]}`; data is row-major, flat or nested. The
response is `{"model_name", "model_version", "id"?, "outputs": [{"name", "datatype", "shape",
"data"}]}`, data flat. Errors are `{"error": "..."}`.

The binary tensor data extension is supported both ways: a request whose header
`Inference-Header-Content-Length` gives the length of its JSON part carries input data as raw
little-endian bytes after it (`parameters.binary_data_size` per input); outputs asked for with
`parameters.binary_data: true` (or all, with the request parameter `binary_data_output: true`)
come back the same way. This is what `tritonclient`'s defaults use.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .. import jsoncodec
from ..dataplane import DataPlane
from ..errors import bad_request
from ..tensors import binary_to_array, check_shape, datatype_of, json_to_array, reshape
from . import Call, Reply, parse_object

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]


def server_version() -> str:
    try:
        return version("lmaas")
    except PackageNotFoundError:
        return "unknown"


class V2Protocol:
    def __init__(self, plane: DataPlane):
        self.plane = plane
        self.server = {"name": "lmaas", "version": server_version(), "extensions": EXTENSIONS}

    async def server_metadata(self, call: Call) -> Reply:
        return Reply(self.server)

    async def live(self, call: Call) -> Reply:
        return Reply({"live": True})

    async def ready(self, call: Call) -> Reply:
        if self.plane.ready:
            return Reply({"ready": True})
        return Reply({"ready": False, "error": f"not ready ({self.plane.state})"}, 503)

    async def model_metadata(self, call: Call) -> Reply:
        self.plane.check_name(call.model)
        return Reply(self.plane.model.metadata())

    async def model_ready(self, call: Call) -> Reply:
        self.plane.check_name(call.model)
        if self.plane.model.ready:
            return Reply({"name": call.model, "ready": True})
        return Reply({"name": call.model, "ready": False, "error": f"not ready ({self.plane.state})"}, 503)

    async def infer(self, call: Call) -> Reply:
        self.plane.check_name(call.model)
        json_part, binary = _split_binary(call)
        document = parse_object(json_part, "inference request")
        request_id = document.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise bad_request(f"id must be a string, got {type(request_id).__name__}")
        parameters = _object(document.get("parameters"), "parameters")
        rows = self._decode_inputs(document.get("inputs"), binary)
        wanted = self._requested_outputs(document.get("outputs"), parameters)
        outputs = await self.plane.infer(rows)
        response: dict[str, Any] = {"model_name": self.plane.model.name, "model_version": "1"}
        if request_id is not None:
            response["id"] = request_id
        tensors, chunks = [], []
        for name, as_binary in wanted:
            array = np.ascontiguousarray(outputs[name])
            tensor: dict[str, Any] = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
            if as_binary:
                raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
                tensor["parameters"] = {"binary_data_size": len(raw)}
                chunks.append(raw)
            else:
                tensor["data"] = array.reshape(-1)
            tensors.append(tensor)
        response["outputs"] = tensors
        if not chunks:
            return Reply(response)
        header = jsoncodec.dumps(response)
        return Reply(
            header + b"".join(chunks),
            headers={HEADER_LENGTH: str(len(header))},
            content_type="application/octet-stream",
        )

    def _decode_inputs(self, inputs: Any, binary: bytes | None) -> np.ndarray:
        model = self.plane.model
        if not isinstance(inputs, list) or not inputs:
            raise bad_request('"inputs" must be a non-empty list of tensors {"name", "shape", "datatype", "data"}')
        expected = [spec.name for spec in model.inputs]
        if len(inputs) != len(expected):
            raise bad_request(
                f"the model takes {len(expected)} input ({', '.join(map(repr, expected))}), got {len(inputs)}"
            )
        offset = 0
        decoded = []
        for i, tensor in enumerate(inputs):
            where = f"inputs[{i}]"
            if not isinstance(tensor, dict):
                raise bad_request(f"{where}: a tensor must be an object with name, shape, datatype and data")
            name, datatype = tensor.get("name"), tensor.get("datatype")
            if not isinstance(name, str):
                raise bad_request(f"{where}.name: must be a string")
            if not isinstance(datatype, str):
                raise bad_request(f"{where}.datatype: must be a string such as FP32 or INT64")
            shape = check_shape(tensor.get("shape"), f"{where}.shape")
            parameters = _object(tensor.get("parameters"), f"{where}.parameters")
            size = parameters.get("binary_data_size")
            if size is not None:
                if binary is None:
                    raise bad_request(
                        f"{where}: binary_data_size is set, but the request has no "
                        f"{HEADER_LENGTH} header and so no binary part"
                    )
                if not (isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= len(binary) - offset):
                    raise bad_request(
                        f"{where}.parameters.binary_data_size: {size!r} does not fit the "
                        f"{len(binary) - offset} bytes of binary data left"
                    )
                array = binary_to_array(binary[offset : offset + size], datatype, shape, where)
                offset += size
            else:
                if "data" not in tensor:
                    raise bad_request(f'{where}: missing field "data"')
                array = reshape(json_to_array(tensor["data"], datatype, f"{where}.data"), shape, f"{where}.data")
            decoded.append(model.check_input(name, array, datatype, where))
        if binary is not None and offset != len(binary):
            raise bad_request(f"the binary part has {len(binary)} bytes, but the inputs use {offset}")
        return decoded[0]

    def _requested_outputs(self, outputs: Any, parameters: dict[str, Any]) -> list[tuple[str, bool]]:
        names = [spec.name for spec in self.plane.model.outputs]
        all_binary = parameters.get("binary_data_output") is True
        if outputs is None:
            return [(name, all_binary) for name in names]
        if not isinstance(outputs, list):
            raise bad_request('"outputs" must be a list of {"name": ...}')
        wanted = []
        for i, output in enumerate(outputs):
            if not isinstance(output, dict) or not isinstance(output.get("name"), str):
                raise bad_request(f"outputs[{i}]: must be an object with a string name")
            if output["name"] not in names:
                raise bad_request(
                    f"outputs[{i}]: unknown output {output['name']!r}; this model's outputs are "
                    f"{', '.join(map(repr, names))}"
                )
            options = _object(output.get("parameters"), f"outputs[{i}].parameters")
            wanted.append((output["name"], options.get("binary_data", all_binary) is True))
        return wanted


def _split_binary(call: Call) -> tuple[bytes, bytes | None]:
    header = call.headers.get(HEADER_LENGTH)
    if header is None:
        return call.body, None
    try:
        length = int(header)
    except ValueError:
        raise bad_request(f"{HEADER_LENGTH}: {header!r} is not a number") from None
    if not 0 < length <= len(call.body):
        raise bad_request(f"{HEADER_LENGTH}: {length} does not fit a body of {len(call.body)} bytes")
    return call.body[:length], call.body[length:]


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{where}: must be an object")
    return value
