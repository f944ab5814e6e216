"""The contract test: the pods the operator renders for a TrainJob really train.

The Job of the two-node sample TrainJob is rendered by the operator's own builders; each pod's
container command runs as a local process with the pod's env, the way a kubelet would start it:
the completion index becomes the node rank, rank 0's host name is pointed at 127.0.0.1, the
downward API volume becomes a file holding the annotation it projects, and the output volume a
temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lmaas_api import contract
from lmaas_operator.config import OperatorConfig
from lmaas_operator.local.kubelet import free_port
from lmaas_operator.trainjob.builders import render_children
from tests.unit.operator.builders import projected_config, stored

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "manifests" / "samples" / "trainjob.yaml"
LANGUAGE_MODEL = REPO / "manifests" / "samples" / "llm" / "pretrain.yaml"


def pod_process_env(
    container: dict,
    index: int,
    rank0_host: str,
    port: int,
    volumes_root: Path,
    config_file: Path,
    termination_log: Path,
) -> dict[str, str]:
    """The container's env as a kubelet resolves it, mapped onto this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PET_", "LMAAS_", "TORCHELASTIC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    for variable in container["env"]:
        if "valueFrom" in variable:
            field_path = variable["valueFrom"]["fieldRef"]["fieldPath"]
            assert "job-completion-index" in field_path, f"unexpected env source {variable}"
            env[variable["name"]] = str(index)
            continue
        value = variable["value"]
        value = value.replace(contract.VOLUMES_ROOT, str(volumes_root))
        value = value.replace(f"{contract.CONFIG_MOUNT}/{contract.CONFIG_FILE}", str(config_file))
        if variable["name"] == "PET_RDZV_ENDPOINT":
            host, _, _ = value.partition(":")
            assert host == rank0_host
            value = f"127.0.0.1:{port}"
        env[variable["name"]] = value
    env["HOME"] = str(volumes_root.parent)
    env["LMAAS_TERMINATION_LOG"] = str(termination_log)  # /dev/termination-log in a pod
    return env


def run_pods(tmp_path: Path, doc: dict, timeout: float = 240) -> list[tuple[int, str, str]]:
    """Render the TrainJob's Job and run each of its pods' command; (exit status, stdout, stderr) each."""
    cr = stored(doc, namespace="ml", uid="contract-uid")
    _service, job = render_children(cr, OperatorConfig(worker_image="unused", peering_priority=1))
    config_file = tmp_path / contract.CONFIG_FILE
    config_file.write_text(json.dumps(projected_config(job["spec"]["template"])))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    port = free_port()
    processes = []
    for index in range(job["spec"]["completions"]):
        env = pod_process_env(
            container,
            index,
            f"{cr.name}-0.{cr.name}",
            port,
            tmp_path / "volumes",
            config_file,
            tmp_path / f"termination-log-{index}",
        )
        processes.append(
            subprocess.Popen(
                container["command"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            raise
        outputs.append((process.returncode, out, err))
    return outputs


def test_the_rendered_pods_of_the_two_node_sample_train_and_write_the_artifact(tmp_path):
    doc = yaml.safe_load(SAMPLE.read_text())
    outputs = run_pods(tmp_path, doc)
    assert len(outputs) == 2
    for code, _out, err in outputs:
        assert code == 0, err[-3000:]
    volumes_root = tmp_path / "volumes"

    output_dir = volumes_root / "lmaas-artifacts" / "trainjobs" / "digits-mlp"
    artifact = output_dir / contract.ARTIFACT_SUBDIR
    assert (artifact / contract.WEIGHTS_FILE).stat().st_size > 0
    card = json.loads((artifact / contract.MODEL_CARD_FILE).read_text())
    assert card["format"] == contract.ARTIFACT_FORMAT
    # Rank 0 (on one of the two nodes) printed progress lines and left the summary the operator reads.
    events = [json.loads(line) for _, out, _ in outputs for line in out.splitlines() if line.startswith("{")]
    assert {e["event"] for e in events} >= {"start", "progress", "done"}
    summaries = [json.loads(p.read_text()) for p in tmp_path.glob("termination-log-*") if p.read_text().strip()]
    (done,) = [s for s in summaries if s["event"] == "done"]
    assert done["artifact"]["path"] == contract.ARTIFACT_SUBDIR
    assert done["artifact"]["metrics"]["accuracy"] > 80


def test_a_spec_only_the_worker_can_refuse_fails_every_pod_with_the_reserved_status(tmp_path):
    """The Job's podFailurePolicy acts on 78; torchrun alone would turn it into 1 and retry."""
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["spec"]["model"]["args"]["num_classes"] = 3  # digits has 10: valid YAML, wrong model
    started = time.monotonic()
    outputs = run_pods(tmp_path, doc, timeout=120)
    assert [code for code, _, _ in outputs] == [contract.EXIT_CONFIG_ERROR] * 2, outputs[0][2][-3000:]
    assert time.monotonic() - started < 90  # refused before any rendezvous, not after restarts
    for index in range(2):
        summary = json.loads((tmp_path / f"termination-log-{index}").read_text())
        assert summary["event"] == "error"
        assert summary["message"].startswith("ConfigError: spec.model: the model gives 3 class scores")


def test_the_rendered_pods_of_the_language_model_sample_train_a_hugging_face_model(tmp_path):
    """The pretrain sample (a Llama from a config, a tokenizer trained on the text, two nodes), four
    epochs: the pod's launcher tokenizes into the node's cache before torchrun, and the ranks write a
    Hugging Face folder on the output volume they share, each its own weight files."""
    doc = yaml.safe_load(LANGUAGE_MODEL.read_text())
    doc["spec"]["hyperparameters"]["epochs"] = 4
    outputs = run_pods(tmp_path, doc)
    for code, _out, err in outputs:
        assert code == 0, err[-3000:]
    artifact = (
        tmp_path / "volumes" / "lmaas-artifacts" / "trainjobs" / "ml" / "llama-shakespeare" / contract.ARTIFACT_SUBDIR
    )
    files = {p.name for p in artifact.iterdir()}
    assert {"config.json", "model.safetensors.index.json", "tokenizer.json", contract.MODEL_CARD_FILE} <= files
    weights = set(json.loads((artifact / "model.safetensors.index.json").read_text())["weight_map"].values())
    assert len(weights) >= 2 and weights <= files
    summaries = [json.loads(p.read_text()) for p in tmp_path.glob("termination-log-*") if p.read_text().strip()]
    (done,) = [s for s in summaries if s["event"] == "done"]
    metrics = done["artifact"]["metrics"]
    assert metrics["perplexity"] < metrics["unigramPerplexity"]
