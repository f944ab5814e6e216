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
from typing import Annotated, Any, Literal, NotRequired

import numpy as np
from pydantic import Field, SkipValidation
from typing_extensions import TypedDict

from ..dataplane import DataPlane
from ..errors import bad_request
from ..model import Model
from ..tensors import ALL_DATATYPES, binary_to_array, datatype_of, json_to_array, reshape
from . import Call, Endpoint, ModelReady, Reply, RequestBody, json_bytes

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]


def server_version() -> str:
    try:
        return version("lmaas")
    except PackageNotFoundError:
        return "unknown"


class Live(TypedDict):
    live: bool


class Ready(TypedDict):
    ready: bool
    error: NotRequired[str]


class ServerMetadata(TypedDict):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(TypedDict):
    name: str
    datatype: str
    shape: Annotated[list[int], Field(description="-1: any size.")]


class ModelMetadata(TypedDict):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InputParameters(RequestBody):
    binary_data_size: int | None = Field(None, ge=0, description="Bytes of this input in the binary part.")


class RequestInput(RequestBody):
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: Literal[ALL_DATATYPES]
    parameters: InputParameters | None = None
    data: SkipValidation[list[Any]] | None = Field(
        None, description="Row-major data, flat or nested; absent when the binary part carries it."
    )
    """Passed to numpy as the client sent it: `tensors.json_to_array` checks every value, and a copy
    of a large tensor's list, item by item, would cost the event loop more than the rest of the body."""


class OutputParameters(RequestBody):
    binary_data: bool | None = Field(None, description="Return this output in the binary part.")


class RequestOutput(RequestBody):
    name: str
    parameters: OutputParameters | None = None


class InferParameters(RequestBody):
    binary_data_output: bool = Field(False, description="Return every output in the binary part.")


class InferRequest(RequestBody):
    id: str | None = None
    parameters: InferParameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="The outputs to return; default: all.")

    @classmethod
    def example(cls, model: Model, instances: list[Any]) -> dict[str, Any]:
        row = model.example_row()
        spec = model.inputs[0]
        return {
            "inputs": [
                {
                    "name": spec.name,
                    "shape": list(row.shape),
                    "datatype": spec.datatype,
                    "data": row.reshape(-1).tolist(),
                }
            ]
        }


class ResponseOutput(TypedDict):
    name: str
    datatype: str
    shape: list[int]
    parameters: NotRequired[Annotated[dict[str, int], Field(description="binary_data_size: bytes in the binary part.")]]
    data: NotRequired[
        Annotated[
            list[int] | list[float | None] | list[bool],
            Field(description="Row-major, flat (null where not finite); absent when in the binary part."),
        ]
    ]


class InferResponse(TypedDict):
    model_name: str
    model_version: str
    id: NotRequired[str]
    outputs: list[ResponseOutput]


class V2Protocol:
    def __init__(self, plane: DataPlane):
        self.plane = plane
        self.server: ServerMetadata = {"name": "lmaas", "version": server_version(), "extensions": EXTENSIONS}

    def endpoints(self) -> list[Endpoint]:
        # The router tries the routes under /v2/models in this order: inference first.
        return [
            Endpoint(
                "POST",
                "/v2/models/{model}/infer",
                self.infer,
                "V2 inference with typed tensors (binary tensor data extension supported)",
                InferResponse,
                InferRequest,
                answers_not_ready=True,
                inference=True,
                binary_header=HEADER_LENGTH,
            ),
            Endpoint("GET", "/v2/models/{model}", self.model_metadata, "V2 model metadata", ModelMetadata),
            Endpoint(
                "GET",
                "/v2/models/{model}/ready",
                self.model_ready,
                "V2 model readiness",
                ModelReady,
                public=True,
                answers_not_ready=True,
            ),
            Endpoint("GET", "/v2", self.server_metadata, "V2 server metadata", ServerMetadata),
            Endpoint("GET", "/v2/health/live", self.live, "V2 liveness", Live, public=True),
            Endpoint(
                "GET",
                "/v2/health/ready",
                self.ready,
                "V2 readiness: loaded, warmed up and not draining",
                Ready,
                public=True,
                answers_not_ready=True,
            ),
        ]

    async def server_metadata(self, call: Call) -> Reply:
        return Reply(self.server)

    async def live(self, call: Call) -> Reply:
        return Reply({"live": True})

    async def ready(self, call: Call) -> Reply:
        if self.plane.ready:
            return Reply({"ready": True})
        return Reply({"ready": False, "error": f"not ready ({self.plane.state})"}, 503)

    async def model_metadata(self, call: Call) -> Reply:
        return Reply(self.plane.model.metadata())

    async def model_ready(self, call: Call) -> Reply:
        if self.plane.model.ready:
            return Reply({"name": call.model, "ready": True})
        return Reply({"name": call.model, "ready": False, "error": f"not ready ({self.plane.state})"}, 503)

    async def infer(self, call: Call) -> Reply:
        request: InferRequest = call.body
        rows = self._decode_inputs(request.inputs, call.binary)
        wanted = self._requested_outputs(request)
        outputs = await self.plane.infer(rows)
        tensors: list[ResponseOutput] = []
        chunks = []
        for name, as_binary in wanted:
            array = np.ascontiguousarray(outputs[name])
            datatype, shape = datatype_of(array), list(array.shape)
            if as_binary:
                chunks.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
                parameters = {"binary_data_size": len(chunks[-1])}
                tensors.append({"name": name, "datatype": datatype, "shape": shape, "parameters": parameters})
            else:
                tensors.append({"name": name, "datatype": datatype, "shape": shape, "data": array.reshape(-1)})
        response: InferResponse = {"model_name": self.plane.model.name, "model_version": "1", "outputs": tensors}
        if request.id is not None:
            response["id"] = request.id
        if not chunks:
            return Reply(response)
        header = json_bytes(response)
        return Reply(
            header + b"".join(chunks),
            headers={HEADER_LENGTH: str(len(header))},
            content_type="application/octet-stream",
        )

    def _decode_inputs(self, inputs: list[RequestInput], binary: bytes | None) -> np.ndarray:
        model = self.plane.model
        expected = [spec.name for spec in model.inputs]
        if len(inputs) != len(expected):
            raise bad_request(
                f"the model takes {len(expected)} input ({', '.join(map(repr, expected))}), got {len(inputs)}"
            )
        offset = 0
        decoded = []
        for i, tensor in enumerate(inputs):
            where = f"inputs[{i}]"
            shape = tuple(tensor.shape)
            size = tensor.parameters.binary_data_size if tensor.parameters is not None else None
            if size is not None:
                if binary is None:
                    raise bad_request(
                        f"{where}: binary_data_size is set, but the request has no "
                        f"{HEADER_LENGTH} header and so no binary part"
                    )
                if size > len(binary) - offset:
                    raise bad_request(
                        f"{where}.parameters.binary_data_size: {size} does not fit the "
                        f"{len(binary) - offset} bytes of binary data left"
                    )
                array = binary_to_array(binary[offset : offset + size], tensor.datatype, shape, where)
                offset += size
            else:
                if tensor.data is None:
                    raise bad_request(f'{where}: missing field "data"')
                array = reshape(json_to_array(tensor.data, tensor.datatype, f"{where}.data"), shape, f"{where}.data")
            decoded.append(model.check_input(tensor.name, array, tensor.datatype, where))
        if binary is not None and offset != len(binary):
            raise bad_request(f"the binary part has {len(binary)} bytes, but the inputs use {offset}")
        return decoded[0]

    def _requested_outputs(self, request: InferRequest) -> list[tuple[str, bool]]:
        names = [spec.name for spec in self.plane.model.outputs]
        all_binary = request.parameters is not None and request.parameters.binary_data_output
        if request.outputs is None:
            return [(name, all_binary) for name in names]
        wanted = []
        for i, output in enumerate(request.outputs):
            if output.name not in names:
                raise bad_request(
                    f"outputs[{i}]: unknown output {output.name!r}; this model's outputs are "
                    f"{', '.join(map(repr, names))}"
                )
            binary = output.parameters.binary_data if output.parameters is not None else None
            wanted.append((output.name, all_binary if binary is None else binary))
        return wanted
