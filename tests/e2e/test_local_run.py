"""End to end: `lmaas run` on the quickstart pipeline, scaled down, as a user runs it.

Real processes all the way: the command itself, two torchrun agents for the two-node TrainJob,
the compress worker, the serving worker answering real HTTP. The test reads what a user reads:
the command's output and exit status, `lmaas get`, the artifacts on disk and the served answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from lmaas_operator.local.kubelet import free_port
from lmaas_worker.data import digits

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "manifests" / "samples" / "quickstart"
LMAAS = str(Path(sys.executable).parent / "lmaas")

pytestmark = pytest.mark.slow


def scaled_down(directory: Path, epochs: int = 3) -> Path:
    """The quickstart with fewer epochs: the same kinds, references and steps."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in sorted(QUICKSTART.glob("*.yaml")):
        doc = yaml.safe_load(source.read_text())
        if doc["kind"] == "TrainJob":
            doc["spec"]["hyperparameters"]["epochs"] = epochs
        if doc["kind"] == "CompressJob":
            doc["spec"]["steps"][0]["prune"]["fineTuneEpochs"] = 1
        if doc["kind"] == "ModelService":
            doc["spec"]["replicas"] = 2  # two local servers, on consecutive ports
        (directory / source.name).write_text(yaml.safe_dump(doc))
    return directory


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PET_", "TORCHELASTIC_", "LMAAS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [LMAAS, "run", *args], cwd=cwd, env=environment(), stdout=out, stderr=subprocess.STDOUT, text=True
        )


def lmaas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LMAAS, *args], cwd=cwd, env=environment(), capture_output=True, text=True, timeout=60)


def stored(runs: Path, plural: str, name: str) -> dict[str, Any]:
    path = runs / "state" / plural / f"{name}.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    output = log.read_text()[-4000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{output}")


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The scaled-down quickstart, run until its ModelService is Ready; Ctrl-C at the end."""
    home = tmp_path_factory.mktemp("quickstart")
    files = scaled_down(home / "quickstart")
    port = free_port()
    log = home / "run.log"
    process = start(["-f", str(files), "--port", str(port)], home, log)
    runs = home / "lmaas-runs"
    try:
        wait_for(
            lambda: stored(runs, "modelservices", "digits").get("status", {}).get("phase") == "Ready",
            600,
            "the ModelService to be Ready",
            process,
            log,
        )
        yield {"home": home, "runs": runs, "port": port, "process": process, "log": log, "files": files}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def test_the_pipeline_trains_on_two_agents_compresses_and_serves_with_statuses_and_artifacts(pipeline):
    runs = pipeline["runs"]
    train = stored(runs, "trainjobs", "digits")["status"]
    assert train["phase"] == "Succeeded" and train["nodes"] == "2"
    assert train["artifact"]["metrics"]["accuracy"] > 85
    artifact = runs / "volumes" / train["artifact"]["uri"][len("pvc://") :]
    assert (artifact / "model.safetensors").stat().st_size > 0 and (artifact / "model.json").exists()
    # Both agents of the two-node job ran (one log per pod), rendezvousing on 127.0.0.1.
    assert len(list((runs / "pods" / "trainjob-digits").iterdir())) == 2
    compress = stored(runs, "compressjobs", "digits-small")["status"]
    assert compress["phase"] == "Succeeded" and compress["input"]["producer"] == "TrainJob/digits"
    assert compress["report"]["sizeRatio"] < 0.3 and compress["report"]["accuracyDelta"] > -1.0
    assert (runs / "volumes" / compress["artifact"]["uri"][len("pvc://") :] / "model.safetensors").exists()
    service = stored(runs, "modelservices", "digits")["status"]
    assert service["readyReplicas"] == 2 and service["model"]["producer"] == "CompressJob/digits-small"
    assert service["url"] == f"http://127.0.0.1:{pipeline['port']}"
    output = pipeline["log"].read_text()
    assert f"curl -s http://127.0.0.1:{pipeline['port']}/predict" in output

    got = lmaas("get", "--dir", str(runs), cwd=pipeline["home"])
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "NODES", "PROGRESS", "LOSS", "AGE"]
    assert lines[1].split()[:3] == ["trainjob.lmaas.io/digits", "Succeeded", "2"]
    assert any(line.split()[:2] == ["compressjob.lmaas.io/digits-small", "Succeeded"] for line in lines)
    assert any(line.split()[:4] == ["modelservice.lmaas.io/digits", "Ready", "2", "2"] for line in lines)


def test_the_three_dialects_answer_alike_and_mostly_right(pipeline):
    data = digits.load(seed=0).val
    inputs, labels = data.tensors[0][:40].numpy(), data.tensors[1][:40].numpy()
    url = f"http://127.0.0.1:{pipeline['port']}"
    seed = post(f"{url}/predict", {"inputs": inputs.tolist()})["predictions"]
    v1 = post(f"{url}/v1/models/digits:predict", {"instances": inputs.tolist()})["predictions"]
    v2 = post(
        f"{url}/v2/models/digits/infer",
        {
            "inputs": [
                {"name": "input", "shape": list(inputs.shape), "datatype": "FP32", "data": inputs.reshape(-1).tolist()}
            ]
        },
    )
    classes = {o["name"]: o for o in v2["outputs"]}["class"]["data"]
    assert seed == v1 == classes
    assert sum(int(p == y) for p, y in zip(seed, labels)) >= 34  # ≥ 85% on held-out digits
    # The second replica, on the next free port (printed with the first), serves the same model.
    (line,) = [x for x in pipeline["log"].read_text().splitlines() if x.startswith("serving ModelService/digits on ")]
    urls = line.split(" on ", 1)[1].split(" (")[0].split(", ")
    assert len(urls) == 2 and urls[0] == url
    assert post(f"{urls[1]}/predict", {"inputs": inputs.tolist()})["predictions"] == seed


def test_ctrl_c_or_sigterm_stops_the_servers_and_a_second_run_skips_what_succeeded(pipeline):
    process = pipeline["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert stored(pipeline["runs"], "modelservices", "digits")["status"]["reason"] == "Stopped"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{pipeline['port']}/v2/health/live", timeout=2)
    log = pipeline["home"] / "again.log"
    again = start(["-f", str(pipeline["files"]), "--port", str(pipeline["port"])], pipeline["home"], log)
    try:
        wait_for(lambda: "serving ModelService/digits" in log.read_text(), 300, "serving again", again, log)
    finally:
        again.send_signal(signal.SIGTERM)  # as a container runtime or CI would stop it
        again.wait(timeout=60)
    output = log.read_text()
    assert "TrainJob/digits: unchanged since it succeeded; skipped" in output
    assert "CompressJob/digits-small: unchanged since it succeeded; skipped" in output
    assert again.returncode == 0, output[-3000:]


def test_an_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    doc = yaml.safe_load((QUICKSTART / "10-train.yaml").read_text())
    doc["metadata"]["name"] = "long"
    doc["spec"]["hyperparameters"]["epochs"] = 40
    doc["spec"]["checkpoint"] = {"everySteps": 20}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(doc))
    runs = tmp_path / "lmaas-runs"
    log = tmp_path / "first.log"
    first = start(["-f", "train.yaml"], tmp_path, log)
    checkpoint = wait_for(
        lambda: stored(runs, "trainjobs", "long").get("status", {}).get("latestCheckpoint"),
        300,
        "a checkpoint",
        first,
        log,
    )
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 130, log.read_text()[-3000:]
    stopped = stored(runs, "trainjobs", "long")["status"]
    assert (stopped["phase"], stopped["reason"]) == ("Suspended", "Interrupted")
    assert "run again to resume" in stopped["message"]

    second = start(["-f", "train.yaml"], tmp_path, tmp_path / "second.log")
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    done = stored(runs, "trainjobs", "long")["status"]
    assert done["phase"] == "Succeeded"
    resumes = [
        json.loads(line)
        for pod_log in (runs / "pods" / "trainjob-long").glob("*/log.txt")
        for line in pod_log.read_text().splitlines()
        if line.startswith('{"event": "resume"')
    ]
    assert resumes and resumes[-1]["step"] >= checkpoint["step"]


def test_broken_resources_fail_with_the_field_named_and_a_non_zero_exit(tmp_path):
    bad = yaml.safe_load((QUICKSTART / "10-train.yaml").read_text())
    bad["spec"]["nodes"] = 0
    (tmp_path / "invalid.yaml").write_text(yaml.safe_dump(bad))
    refused = lmaas("run", "-f", "invalid.yaml", cwd=tmp_path)
    assert refused.returncode == 1
    assert "spec.nodes" in refused.stderr and "invalid.yaml" in refused.stderr
    assert not (tmp_path / "lmaas-runs" / "state").exists()  # nothing ran

    wrong = yaml.safe_load((QUICKSTART / "10-train.yaml").read_text())
    wrong["spec"]["model"]["args"]["num_classes"] = 3  # valid YAML; only the worker can tell
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(wrong))
    failed = lmaas("run", "-f", "wrong.yaml", cwd=tmp_path)
    assert failed.returncode == 1
    assert "TrainJob/digits did not succeed: Failed (ConfigError)" in failed.stdout
    assert "spec.model: the model gives 3 class scores" in failed.stdout
    status = stored(tmp_path / "lmaas-runs", "trainjobs", "digits")["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ConfigError")
