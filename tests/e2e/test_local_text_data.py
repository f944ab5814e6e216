"""End to end: `lmaas run` trains a Hugging Face model on JSON lines from a pvc:// path, as a user
runs it: the file placed where the claim is (`--dir`'s volumes/CLAIM/PATH), the operator's pod
rendered with the claim mounted read-only, the worker reading the named field of each record."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from lmaas_worker.data import shakespeare

from .test_local_run import LMAAS, environment, stored

pytestmark = pytest.mark.slow

JOB = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "poems"},
    "spec": {
        "model": {
            "hf": {
                "config": {
                    "model_type": "llama",
                    "hidden_size": 32,
                    "intermediate_size": 64,
                    "num_hidden_layers": 1,
                    "num_attention_heads": 2,
                    "max_position_embeddings": 32,
                }
            }
        },
        "tokenizer": {"train": {"vocabSize": 512}},
        "dataset": {"uri": "pvc://corpora/poems.jsonl", "format": "jsonl", "textField": "verse", "sequenceLength": 32},
        "nodes": 1,
        "hyperparameters": {"maxSteps": 6, "batchSize": 8, "logEverySteps": 2},
    },
}


def test_a_trainjob_reads_json_lines_from_a_claim_path(tmp_path):
    runs = tmp_path / "runs"
    stanzas = [s for s in shakespeare.text().split("\n\n") if len(s.splitlines()) > 2]
    corpus = runs / "volumes" / "corpora" / "poems.jsonl"
    corpus.parent.mkdir(parents=True)
    corpus.write_text("".join(json.dumps({"n": i, "verse": s}) + "\n" for i, s in enumerate(stanzas)))
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(JOB))
    done = subprocess.run(
        [LMAAS, "run", "-f", "job.yaml", "--dir", str(runs)],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    status = stored(runs, "trainjobs", "poems")["status"]
    assert status["phase"] == "Succeeded"
    card = json.loads(
        (
            runs / "volumes" / "lmaas-artifacts" / "trainjobs" / "default" / "poems" / "artifact" / "model.json"
        ).read_text()
    )
    assert card["dataset"]["uri"] == "pvc://corpora/poems.jsonl" and card["dataset"]["textField"] == "verse"
    assert card["input"]["shape"] == [32]

    broken = {**JOB, "metadata": {"name": "prose"}}
    broken["spec"] = {**JOB["spec"], "dataset": {**JOB["spec"]["dataset"], "textField": "prose"}}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    failed = subprocess.run(
        [LMAAS, "run", "-f", "broken.yaml", "--dir", str(runs)],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1
    reason = stored(runs, "trainjobs", "prose")["status"]
    assert reason["phase"] == "Failed"
    assert "spec.dataset.textField: line 1 of pvc://corpora/poems.jsonl has no field 'prose'" in json.dumps(reason)
