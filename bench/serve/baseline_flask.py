"""The seed's serving app, rewritten in a few lines: Flask, `POST /predict`, one forward per request.

Run with the interpreter of its own virtual environment (see setup_baselines.sh), either on Flask's
built-in development server (werkzeug, threaded), as the seed's container did:

    /tmp/flask-venv/bin/python bench/serve/baseline_flask.py --model-dir DIR --port 8082

or as Flask apps are deployed, on gunicorn (what run.py starts; see README.md for the settings):

    OMP_NUM_THREADS=1 /tmp/flask-venv/bin/python -m gunicorn --workers 2 --worker-class gthread --threads 4 \
        --keep-alive 5 --bind 127.0.0.1:8083 "bench.serve.baseline_flask:create_app('DIR', torch_threads=1)"

gunicorn calls `create_app` in each worker after the fork (no --preload), so every worker loads
the model and sets its own torch threads. Requests run in other threads than the one that called
torch.set_num_threads, which binds OpenMP in its own thread only: hence OMP_NUM_THREADS as well
(run.py sets it for every server).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "worker"), str(REPO / "api")]  # lmaas' code, not installed in this venv

import torch  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402

from lmaas_worker import artifacts  # noqa: E402


def create_app(model_dir: str, torch_threads: int | None = None) -> Flask:
    if torch_threads:
        torch.set_num_threads(torch_threads)
    module, _ = artifacts.load(model_dir)
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        inputs = torch.tensor(request.get_json()["inputs"], dtype=torch.float32)
        with torch.no_grad():
            predictions = module(inputs).argmax(dim=1).tolist()
        return jsonify({"predictions": predictions})

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    create_app(args.model_dir, args.threads).run(host="127.0.0.1", port=args.port, threaded=True)
