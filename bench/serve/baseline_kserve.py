"""The KServe baseline: KServe's Python ModelServer (PyPI `kserve`) wrapping the same torch module.

Run with the interpreter of KServe's own virtual environment (see setup_baselines.sh):

    /tmp/kserve-venv/bin/python bench/serve/baseline_kserve.py --model-dir DIR --http_port 8081 --model_name digits

The model is loaded with lmaas' own `artifacts.load`, so it is the very module lmaas serves; the
predict method is what a KServe user writes for a torch classifier (V1 `instances` in,
class indices out). All other settings are KServe's defaults unless given on the command line
(KServe parses its own flags, e.g. --enable_latency_logging, --enable_grpc, --workers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "worker"), str(REPO / "api")]  # lmaas' code, not installed in this venv

import torch  # noqa: E402
from kserve import Model, ModelServer  # noqa: E402

from lmaas_worker import artifacts  # noqa: E402


class TorchClassifier(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.module = None
        self.load()

    def load(self) -> bool:
        self.module, _ = artifacts.load(self.model_dir)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        inputs = torch.tensor(payload["instances"], dtype=torch.float32)
        with torch.inference_mode():
            logits = self.module(inputs)
        return {"predictions": logits.argmax(dim=1).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model_name", default="model")
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=None)
    args, _ = parser.parse_known_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ModelServer(http_port=args.http_port).start([TorchClassifier(args.model_name, args.model_dir)])
