"""Real third-party clients against the server: Triton's V2 client, and schemathesis fuzzing the
OpenAPI document."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lmaas_worker.data import digits

from . import artifacts
from .conftest import TOKEN

pytestmark = pytest.mark.serving


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_infers_with_json_and_binary_tensors(digits_server, digits_dir, binary):
    httpclient = pytest.importorskip("tritonclient.http")
    module, _ = artifacts.loaded(digits_dir)
    samples = digits.load(seed=0).val.tensors[0][:5].numpy()
    with torch.no_grad():
        logits = module(torch.from_numpy(samples))
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{digits_server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digits")
        metadata = client.get_model_metadata("digits")
        assert metadata["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 64]}
        tensor = httpclient.InferInput("input", list(samples.shape), "FP32")
        tensor.set_data_from_numpy(samples, binary_data=binary)
        outputs = [
            httpclient.InferRequestedOutput("class", binary_data=binary),
            httpclient.InferRequestedOutput("probabilities", binary_data=binary),
        ]
        result = client.infer("digits", [tensor], outputs=outputs, request_id="triton-1")
        assert result.get_response()["id"] == "triton-1"
        np.testing.assert_array_equal(result.as_numpy("class"), logits.argmax(1).numpy())
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), torch.softmax(logits, 1).numpy(), rtol=1e-4, atol=1e-6
        )
    finally:
        client.close()


def _schemathesis(port: int, *extra: str, more_checks: str = "", examples: int = 25) -> subprocess.CompletedProcess:
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        pytest.skip("schemathesis is not installed")
    checks = (
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
        "response_headers_conformance,unsupported_method,allow_header_conformance" + more_checks
    )
    command = [
        str(st),
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        checks,
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        str(examples),
        "--workers",
        "2",
        "--seed",
        "20261129",
        "--no-color",
        "--generation-database",
        "none",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(digits_server):
    # Fuzzing checks that no input gives a 5xx, and that every answer (status code, content type,
    # body) is one that /openapi.json documents, and that undocumented methods get 405 with Allow.
    # Not checked: that every schema-valid V2 request is accepted, since a tensor's data must fit
    # its shape, which JSON Schema cannot say.
    run = _schemathesis(digits_server.port)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


def test_schemathesis_with_the_bearer_token_checks_auth_too(start_server, digits_dir):
    server = start_server(digits_dir, "--name", "digits", env={"LMAAS_AUTH_TOKEN": TOKEN})
    run = _schemathesis(
        server.port, "--header", f"Authorization: Bearer {TOKEN}", more_checks=",ignored_auth", examples=5
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
