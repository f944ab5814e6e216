"""The CompressJob worker, `lmaas compress`: prune, distill and quantize, measured and bounded.

Entry point `run_compression` (main.py). Modules: `config` (the CR file), `pipeline` (steps in
order, measurement, the bound, the artifact), `state` (the model between steps, and how it is
stored), `prune`, `distill` (the algorithms; quantization's integer codes are the compressed
artifact format's, `lmaas_worker.artifacts.quantize`), `training` (fine-tuning loop), `measure`
(size, parameters, latency, quality), `report`.

To load a compressed (or any) lmaas artifact in Python: `lmaas_worker.artifacts.load(path)`.
"""

from .main import run_compression

__all__ = ["run_compression"]
