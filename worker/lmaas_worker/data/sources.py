"""The text of a Hugging Face language model's data set: read, checked and split, not yet tokenized.

A source is the bytes of a builtin (shakespeare as text, shakespeare-chat as chat) or of the file
at `spec.dataset.uri`, in one of four formats:

- text: UTF-8 text, one document; the last `validationFraction` of it, cut at a line start, is held out;
- jsonl: one JSON object per line, its text in `textField` ("text" when not set);
- parquet: a table whose string column `textField` holds one text per row;
- chat: one JSON object per line, {"messages": [{"role": "system" | "user" | "assistant",
  "content": "..."}, ...]}, with at least one assistant message.

Blank lines are skipped, but lines keep their numbers in messages. The last `validationFraction`
of the records (at least one) is held out. A record that breaks these rules is a ConfigError naming
the spec field and the line (or row), raised while reading, before any tokenizer or process group.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow
import pyarrow.parquet

from lmaas_api.errors import ConfigError
from lmaas_api.spec import TrainJobDataset

from . import shakespeare, shakespeare_chat

DEFAULT_TEXT_FIELD = "text"
ROLES = ("system", "user", "assistant")
BUILTINS = {
    "shakespeare": (lambda: shakespeare.text().encode(), "text"),
    "shakespeare-chat": (shakespeare_chat.jsonl, "chat"),
}


@dataclass(frozen=True)
class Conversation:
    line: int
    """Where the conversation is in its file (1-based), for messages."""
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class Split:
    """A source read and split: training and held-out documents (text) or conversations (chat)."""

    format: str
    digest: str
    """SHA-256 of the source's bytes, which the tokenized data's cache key holds."""
    options: dict[str, Any]
    """Everything besides the bytes that shapes the split: format, text field, validation fraction."""
    train: list[str] | list[Conversation] = field(repr=False)
    held_out: list[str] | list[Conversation] = field(repr=False)

    @property
    def is_chat(self) -> bool:
        return self.format == "chat"

    def training_text(self) -> str:
        """The training split as one text, to train a tokenizer on (no held-out text is in it)."""
        if self.is_chat:
            return "\n".join(m["content"] for c in self.train for m in c.messages)
        return "\n".join(self.train)


def read_split(definition: TrainJobDataset, path: Path | None) -> Split:
    """The source of `definition` (a builtin, or the file at `path` that `uri` is), read and split."""
    if definition.builtin is not None:
        read, form = BUILTINS[definition.builtin]
        data, text_field = read(), DEFAULT_TEXT_FIELD
    else:
        data, form, text_field = _read_file(path, definition.uri), definition.format, definition.text_field
        text_field = text_field or DEFAULT_TEXT_FIELD
    fraction = definition.validation_fraction
    name = definition.label
    if form == "text":
        train, held_out = split_text(_decoded(data, name), fraction)
        parts: tuple[list, list] = ([train], [held_out])
    elif form == "chat":
        parts = _split_records(_conversations(data, name), fraction)
    elif form == "jsonl":
        parts = _split_records(_jsonl_texts(data, name, text_field), fraction)
    else:
        parts = _split_records(_parquet_texts(data, name, text_field), fraction)
    options = {"format": form, "validationFraction": fraction}
    if form in ("jsonl", "parquet"):
        options["textField"] = text_field
    return Split(form, hashlib.sha256(data).hexdigest(), options, *parts)


def split_text(text: str, validation_fraction: float) -> tuple[str, str]:
    """(training text, held-out text): the held-out part is the last `validation_fraction`, from a line start."""
    cut = text.rfind("\n", 0, int(len(text) * (1 - validation_fraction))) + 1
    return text[:cut], text[cut:]


def _read_file(path: Path | None, uri: str | None) -> bytes:
    if path is None:
        raise ConfigError("spec.dataset.uri", f"the file of {uri} is not mounted (no dataset path given)")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError("spec.dataset.uri", f"{uri} ({path}) cannot be read: {error.strerror or error}") from error


def _decoded(data: bytes, name: str, line: int | None = None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = f"line {line} of {name}" if line else name
        raise ConfigError("spec.dataset.uri", f"{where} is not UTF-8 text: {error.reason}") from error


def _split_records(records: list, validation_fraction: float) -> tuple[list, list]:
    held = max(1, math.ceil(len(records) * validation_fraction))
    if len(records) - held < 1:
        raise ConfigError(
            "spec.dataset.validationFraction",
            f"the data set has {len(records)} record(s): too few to hold out {validation_fraction} and train on the rest",
        )
    return records[:-held], records[-held:]


def _json_lines(data: bytes, name: str) -> list[tuple[int, Any]]:
    """(line number, parsed value) of every line that is not blank."""
    parsed = []
    for number, line in enumerate(_decoded(data, name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise ConfigError("spec.dataset.uri", f"line {number} of {name} is not JSON: {error.msg}") from error
    return parsed


def _jsonl_texts(data: bytes, name: str, text_field: str) -> list[str]:
    texts = []
    for number, record in _json_lines(data, name):
        if not isinstance(record, dict) or text_field not in record:
            raise ConfigError("spec.dataset.textField", f"line {number} of {name} has no field {text_field!r}")
        if not isinstance(record[text_field], str):
            raise ConfigError(
                "spec.dataset.textField",
                f"line {number} of {name}: {text_field!r} holds a {type(record[text_field]).__name__}, not text",
            )
        texts.append(record[text_field])
    return texts


def _parquet_texts(data: bytes, name: str, text_field: str) -> list[str]:
    try:
        table = pyarrow.parquet.read_table(io.BytesIO(data))
    except (pyarrow.ArrowException, OSError) as error:
        raise ConfigError("spec.dataset.uri", f"{name} is not a Parquet file: {error}") from error
    if text_field not in table.column_names:
        raise ConfigError(
            "spec.dataset.textField",
            f"{name} has no column {text_field!r}; its columns: {', '.join(table.column_names)}",
        )
    column = table.column(text_field)
    if not (pyarrow.types.is_string(column.type) or pyarrow.types.is_large_string(column.type)):
        raise ConfigError("spec.dataset.textField", f"column {text_field!r} of {name} holds {column.type}, not text")
    texts = column.to_pylist()
    if None in texts:
        raise ConfigError("spec.dataset.textField", f"row {texts.index(None) + 1} of {name} has no {text_field!r}")
    return texts


def _conversations(data: bytes, name: str) -> list[Conversation]:
    return [_conversation(number, record, name) for number, record in _json_lines(data, name)]


def _conversation(number: int, record: Any, name: str) -> Conversation:
    where = f"line {number} of {name}"
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ConfigError("spec.dataset.uri", f'{where} has no "messages" list (format chat)')
    for k, message in enumerate(messages):
        if not (isinstance(message, dict) and isinstance(message.get("content"), str)):
            raise ConfigError("spec.dataset.uri", f'{where}: message {k} has no "content" text')
        if message.get("role") not in ROLES:
            raise ConfigError(
                "spec.dataset.uri",
                f"{where}: message {k} has role {message.get('role')!r}; the roles are {', '.join(ROLES)}",
            )
    if not any(m["role"] == "assistant" for m in messages):
        raise ConfigError("spec.dataset.uri", f"{where} has no assistant turn: it has nothing to learn from")
    return Conversation(number, [{"role": m["role"], "content": m["content"]} for m in messages])
