"""Readiness only after load and warm-up; a graceful drain on SIGTERM; clear exits on bad artifacts.

The exits that happen before the server starts (a missing artifact, a bad ModelService) are
checked through the CLI's own `main` in this process; everything else runs `lmaas serve`."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time

import aiohttp
import pytest
import torch

from lmaas_cli import main as cli
from lmaas_worker.data import digits

from . import artifacts
from .harness import ServerProcess, metric_value

pytestmark = pytest.mark.serving

ROW = [0.25] * 64


def test_ready_only_after_the_model_is_loaded_and_warmed_up(start_server, slow_loading_dir):
    server = start_server(slow_loading_dir, "--name", "slow", "--trust-artifact-code", ready=False)  # sleeps 2 s
    server.wait_listening()
    refused = 0
    while True:
        ready = server.get("/v2/health/ready")
        if ready.status == 200:
            log = server.log  # read at once: the line must already be there when readiness turns 200
            break
        assert ready.status == 503 and ready.json["ready"] is False
        assert server.get("/v2/health/live").status == 200  # alive while loading: no restart by the kubelet
        predict = server.post("/v1/models/slow:predict", {"instances": [ROW]})
        if predict.status == 503:  # (the model may have become ready since the readiness probe)
            assert "not ready" in predict.error
            refused += 1
        else:
            assert predict.status == 200
        assert server.process.poll() is None, server.log
        time.sleep(0.05)
    assert refused >= 5, "the server was ready before its 2-second load could have finished"
    assert "warm-up inference done" in log, "ready before the warm-up inference ran"
    assert log.index("model loaded") < log.index("warm-up inference done")
    assert server.get("/v2/models/slow/ready").status == 200
    assert server.post("/v1/models/slow:predict", {"instances": [ROW]}).status == 200


def test_sigterm_under_load_loses_no_request_and_exits_zero(tmp_path, slow_forward_dir):
    # Forward passes take 0.3 s and hold 4 rows: 16 requests need 4 passes, about 1.2 s.
    server = ServerProcess(
        slow_forward_dir,
        tmp_path / "serve.log",
        "--name",
        "slow",
        "--max-batch-size",
        "4",
        "--max-latency-ms",
        "1",
        "--trust-artifact-code",
    )
    try:
        server.wait_ready()
        module, _ = artifacts.loaded(slow_forward_dir)
        rows = digits.load(seed=0).val.tensors[0][:16].numpy()
        with torch.no_grad():
            expected = module(torch.from_numpy(rows)).argmax(1).tolist()
        results: list = []

        async def load() -> None:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

                async def one(i: int):
                    url = f"http://127.0.0.1:{server.port}/v1/models/slow:predict"
                    async with session.post(url, json={"instances": [rows[i].tolist()]}) as response:
                        return response.status, await response.json()

                results.extend(await asyncio.gather(*(one(i) for i in range(16))))

        client = threading.Thread(target=lambda: asyncio.run(load()))
        client.start()
        deadline = time.monotonic() + 20
        while metric_value(server.metrics(), "lmaas_requests_in_flight") < 17:  # 16 and the scrape
            assert time.monotonic() < deadline, "the requests never reached the server"
            time.sleep(0.01)
        server.signal(signal.SIGTERM)
        time.sleep(0.1)
        # Draining: not ready any more (the pod leaves the Service), but still alive and answering.
        ready = server.get("/v2/health/ready")
        assert ready.status == 503 and "draining" in ready.json["error"]
        late = server.post("/v1/models/slow:predict", {"instances": [ROW]})
        assert late.status == 200 and late.headers.get("connection") == "close"
        client.join(60)
        assert [status for status, _ in results] == [200] * 16
        assert [body["predictions"][0] for _, body in results] == expected
        assert server.wait(30) == 0
        log = server.log
        assert "SIGTERM: not ready any more" in log and "drained: no request in flight" in log
    finally:
        server.stop()


def test_the_name_defaults_to_the_artifacts_producer_and_sigint_stops_at_once(start_server, digits_dir):
    server = start_server(digits_dir)
    assert server.get("/v1/models").json == {"models": ["serving-tests"]}
    started = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait(10) == 0
    assert time.monotonic() - started < 5


def test_a_pickled_artifact_is_refused_with_exit_78(tmp_path, digits_dir):
    artifact = tmp_path / "pickled"
    artifact.mkdir()
    (artifact / "model.json").write_text((digits_dir / "model.json").read_text())
    module, _ = artifacts.loaded(digits_dir)
    torch.save(module.state_dict(), artifact / "model.safetensors")  # a torch.save zip, named like safetensors
    server = ServerProcess(artifact, tmp_path / "serve.log")
    try:
        assert server.wait(60) == 78
        assert "never unpickles" in server.log
    finally:
        server.stop()


@pytest.fixture
def in_process_logging():
    """`lmaas serve` run in this process sets up the worker's logging; put it back afterwards."""
    logger = logging.getLogger("lmaas_worker")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_a_missing_artifact_exits_78_naming_it(tmp_path, capfd, in_process_logging):
    assert cli.main(["serve", "--model-dir", str(tmp_path / "nothing-here")]) == 78
    assert "nothing-here" in capfd.readouterr().err


def test_settings_come_from_the_modelservice_and_flags_win(start_server, tmp_path, digits_dir):
    resource = {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "ModelService",
        "metadata": {"name": "from-config", "namespace": "ns", "uid": "u-1"},
        "spec": {
            "model": {"fromTrainJob": "digits"},
            "port": 9000,
            "threads": 1,
            "batching": {"maxBatchSize": 4, "maxLatencyMs": 2},
        },
    }
    config = tmp_path / "config.json"
    config.write_text(json.dumps(resource))
    server = start_server(digits_dir, "--config", str(config), "--max-latency-ms", "7")  # --port 0 beats spec.port
    assert server.get("/v1/models").json == {"models": ["from-config"]}
    log = server.log
    assert "max_batch_size=4 max_latency_ms=7 threads=1" in log
    info = server.metrics()
    assert metric_value(info, "lmaas_model_info", model="from-config", source="TrainJob/digits") == 1


def test_a_bad_modelservice_exits_78(tmp_path, digits_dir, capfd, in_process_logging):
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: lmaas.io/v1alpha1\nkind: ModelService\nmetadata: {name: x}\n"
        "spec: {model: {uri: 'pvc://a/b'}, batching: {maxBatchSize: many}}\n"
    )
    assert cli.main(["serve", "--model-dir", str(digits_dir), "--config", str(config)]) == 78
    assert "spec.batching.maxBatchSize" in capfd.readouterr().err
