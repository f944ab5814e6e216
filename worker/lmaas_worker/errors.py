"""The one error the worker classifies: a configuration that cannot work.

Anything raised as `ConfigError` ends the run with `contract.EXIT_CONFIG_ERROR` (78), so that the
TrainJob fails at once instead of spending its restart budget. Every other exception propagates
unchanged: a crash, which torchrun and the Job may retry.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem; the message starts with the field at fault (e.g. `spec.model.args`)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")
