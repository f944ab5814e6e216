"""The one configuration error of every role: a setting that cannot work, named by its field.

`field` is where the user fixes it: a spec path (`spec.model.args`), a flag (`--config`) or an
operator setting (`LMAAS_MAX_WORKERS`). A worker ends with `contract.EXIT_CONFIG_ERROR` (78) on
it, so that a Job fails at once instead of spending its restart budget; the `lmaas` command prints
it without a traceback. Every other exception propagates unchanged: a crash, which torchrun and
the Job may retry.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem; the message starts with the field at fault (e.g. `spec.model.args`)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")
