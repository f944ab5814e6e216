"""The CompressJob worker, `lmaas compress`: prune, distill and quantize, measured and bounded.

Entry point `run_compression` (main.py). Modules: `config` (the CR file), `pipeline` (steps in
order, measurement, the bound, the artifact), `prune`, `distill`, `quantize` (the algorithms),
`training` (fine-tuning loop), `measure` (size, parameters, latency, quality), `storage` (the
compressed safetensors format and its loader), `int8_backend` (the integer kernels), `report`.

To load a compressed (or any) lmaas artifact in Python: `module, card = load_artifact(path)`.
"""
from .main import run_compression
from .storage import load_artifact, load_compressed

__all__ = ["load_artifact", "load_compressed", "run_compression"]
