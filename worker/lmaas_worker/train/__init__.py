"""The TrainJob worker, `lmaas train`. See `main.run_training`.

Modules: `config` (the CR file), `build` (data, model, strategy, optimizer), `plan` (data order,
steps and epochs on any world size), `loop` (steps, evaluation, checkpoints, resume), `checkpoint`,
`evaluate`, `optim`, `parallel`, `tasks`, `finish` (the artifact).
"""

from .main import run_training

__all__ = ["run_training"]
