"""User code: "package.module:function" references, and calling builders with their arguments.

`call_builder` passes the spec's `args` as keyword arguments. It also offers *hints*, values that
lmaas knows and a builder may want (for a model: `num_classes`, `in_features`, `input_shape`,
`vocab_size`; for data: `seed`, `validation_fraction`, `context`): a hint is passed only when the
function names that parameter explicitly and `args` does not set it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

from lmaas_api import contract
from lmaas_api.errors import ConfigError
from lmaas_api.spec import ArtifactCodePolicy

_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def import_factory(reference: str, field: str) -> Callable[..., Any]:
    """Import `reference` ("pkg.mod:fn"); any failure is a ConfigError naming `field`."""
    if not _REFERENCE.match(reference or ""):
        raise ConfigError(field, f'{reference!r} is not of the form "package.module:function"')
    module_name, attribute = reference.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(field, f"cannot import module {module_name!r}: {error}") from error
    except Exception as error:  # the module exists but raises while importing: still the user's config
        raise ConfigError(field, f"importing module {module_name!r} failed: {type(error).__name__}: {error}") from error
    function = getattr(module, attribute, None)
    if function is None:
        raise ConfigError(field, f"module {module_name!r} has no attribute {attribute!r}")
    if not callable(function):
        raise ConfigError(field, f"{reference} is not callable")
    return function


def refuse_unless_allowed(reference: str, card_field: str, artifact_code: ArtifactCodePolicy) -> None:
    """Refuse, before anything is imported, a factory that an artifact's model card names
    (`card_field`, such as "model.factory") unless the loading resource allows it."""
    if not artifact_code.allows(reference):
        raise ConfigError(
            contract.MODEL_CARD_FILE,
            f"{card_field} {json.dumps(reference)} is not a factory this resource names; not imported. "
            f"To run it, set spec.trustArtifactCode: true (lmaas serve: --trust-artifact-code); "
            f"unsafe: the artifact's author runs code here",
        )


def call_builder(
    function: Callable[..., Any], args: dict[str, Any] | None, hints: dict[str, Any], field: str
) -> tuple[Any, dict[str, Any]]:
    """Call `function(**args, **wanted hints)`; return (result, the keyword arguments used).

    Arguments that do not fit the signature, and TypeError/ValueError raised by the builder
    itself (its way of saying "these arguments make no sense"), are a ConfigError naming `field`.
    """
    args = dict(args or {})
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        named = {
            name for name, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        for name, value in hints.items():
            if name in named and name not in args and value is not None:
                args[name] = value
        try:
            signature.bind(**args)
        except TypeError as error:
            raise ConfigError(field, f"arguments do not fit {_name(function)}{signature}: {error}") from error
    try:
        return function(**args), args
    except (TypeError, ValueError) as error:
        raise ConfigError(field, f"{_name(function)} rejected its arguments {args}: {error}") from error


def _name(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', function)}"
