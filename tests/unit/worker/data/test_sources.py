"""lmaas_worker.data.sources: a language model's data read from a builtin or a file in each format,
split where no held-out record was trained on, and every broken record refused by field and line."""

import hashlib
import json

import pyarrow
import pyarrow.parquet
import pytest

from lmaas_api.errors import ConfigError
from lmaas_api.spec import TrainJobDataset
from lmaas_worker.data import shakespeare, shakespeare_chat
from lmaas_worker.data.sources import Conversation, read_split, split_text

POEMS = ["Shall I compare thee to a summer's day?", "Thou art more lovely and more temperate.", "Rough winds do shake."]


def dataset(**fields) -> TrainJobDataset:
    return TrainJobDataset.model_validate({"sequenceLength": 16, "validationFraction": 0.3, **fields})


def file_dataset(tmp_path, name: str, content: bytes | str, form: str, **fields):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return dataset(uri=f"pvc://data/{name}", format=form, **fields), path


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def chat(*turns) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def refusal(tmp_path, name, content, form, **fields) -> ConfigError:
    definition, path = file_dataset(tmp_path, name, content, form, **fields)
    with pytest.raises(ConfigError) as error:
        read_split(definition, path)
    return error.value


def test_the_held_out_text_is_the_last_fraction_from_a_line_start():
    corpus = shakespeare.text()
    train, held_out = split_text(corpus, 0.1)
    assert train + held_out == corpus
    assert train.endswith("\n") and 0.09 < len(held_out) / len(corpus) < 0.11
    split = read_split(dataset(builtin="shakespeare", validationFraction=0.1), None)
    assert (split.format, split.train, split.held_out) == ("text", [train], [held_out])
    assert split.digest == hashlib.sha256(corpus.encode()).hexdigest() and split.training_text() == train


def test_a_plain_text_file_splits_as_the_builtin_does(tmp_path):
    content = "\n".join(POEMS) + "\n"
    definition, path = file_dataset(tmp_path, "poems.txt", content, "text", validationFraction=0.2)
    split = read_split(definition, path)
    assert (split.train, split.held_out) == ([POEMS[0] + "\n" + POEMS[1] + "\n"], [POEMS[2] + "\n"])
    assert split.options == {"format": "text", "validationFraction": 0.2}


def test_json_lines_hold_one_text_per_record_in_the_named_field(tmp_path):
    content = jsonl(*({"body": p, "n": i} for i, p in enumerate(POEMS))) + "\n"  # a blank line is skipped
    definition, path = file_dataset(tmp_path, "poems.jsonl", content, "jsonl", textField="body")
    split = read_split(definition, path)
    assert (split.train, split.held_out) == (POEMS[:2], POEMS[2:])  # ceil(0.3 * 3) = 1 record held out
    assert split.options["textField"] == "body" and split.training_text() == "\n".join(POEMS[:2])
    default, path = file_dataset(tmp_path, "plain.jsonl", jsonl(*({"text": p} for p in POEMS)), "jsonl")
    assert read_split(default, path).held_out == POEMS[2:]


def test_a_parquet_table_holds_one_text_per_row_in_the_named_column(tmp_path):
    path = tmp_path / "poems.parquet"
    pyarrow.parquet.write_table(pyarrow.table({"verse": POEMS, "n": [1, 2, 3]}), path)
    split = read_split(dataset(uri="pvc://data/poems.parquet", format="parquet", textField="verse"), path)
    assert (split.format, split.train, split.held_out) == ("parquet", POEMS[:2], POEMS[2:])


def test_chat_lines_become_conversations_that_keep_their_line_numbers(tmp_path):
    first = chat(
        ("system", "Be brief."), ("user", "Continue: Shall I compare thee"), ("assistant", "to a summer's day?")
    )
    second = chat(("user", "And then?"), ("assistant", "Thou art more lovely."))
    definition, path = file_dataset(tmp_path, "talk.jsonl", jsonl(first) + "\n" + jsonl(second), "chat")
    split = read_split(definition, path)
    assert split.is_chat and split.train == [Conversation(1, first["messages"])]
    assert split.held_out == [Conversation(3, second["messages"])]
    assert "to a summer's day?" in split.training_text() and "lovely" not in split.training_text()


def test_the_builtin_chat_data_is_made_the_same_every_time_from_the_shipped_text():
    conversations = shakespeare_chat.conversations()
    assert 500 < len(conversations) < 2000 and shakespeare_chat.jsonl() == shakespeare_chat.jsonl()
    lines = shakespeare.text().splitlines()
    first = conversations[0]["messages"]
    assert first[0]["content"] == f"Continue this line: {lines[5]}" and first[1]["content"] == lines[6]
    roles = {tuple(m["role"] for m in c["messages"]) for c in conversations}
    assert ("system", "user", "assistant") in roles and ("user", "assistant", "user", "assistant") in roles
    split = read_split(dataset(builtin="shakespeare-chat", validationFraction=0.1), None)
    assert split.is_chat and len(split.train) + len(split.held_out) == len(conversations)
    assert split.train[0].messages == first and split.digest == hashlib.sha256(shakespeare_chat.jsonl()).hexdigest()


REFUSED = {
    "a record without the named field": (
        "poems.jsonl",
        jsonl({"text": POEMS[0]}, {"body": POEMS[1]}),
        "jsonl",
        {},
        "spec.dataset.textField",
        "line 2 of pvc://data/poems.jsonl has no field 'text'",
    ),
    "a field that is not text": (
        "poems.jsonl",
        jsonl({"text": POEMS[0]}, {"text": ["a", "list"]}),
        "jsonl",
        {},
        "spec.dataset.textField",
        "line 2 of pvc://data/poems.jsonl: 'text' holds a list, not text",
    ),
    "a line that is not JSON": (
        "poems.jsonl",
        jsonl({"text": POEMS[0]}) + "{not json\n",
        "jsonl",
        {},
        "spec.dataset.uri",
        "line 2 of pvc://data/poems.jsonl is not JSON",
    ),
    "bytes that are not UTF-8": ("poems.txt", b"Shall I \xff compare", "text", {}, "spec.dataset.uri", "not UTF-8"),
    "a file that is not Parquet": (
        "poems.parquet",
        "a,b\n1,2\n",
        "parquet",
        {},
        "spec.dataset.uri",
        "pvc://data/poems.parquet is not a Parquet file",
    ),
    "a chat record without an assistant turn": (
        "talk.jsonl",
        jsonl(chat(("user", "Hi"), ("assistant", "Hello")), chat(("system", "Be brief."), ("user", "Hi"))),
        "chat",
        {},
        "spec.dataset.uri",
        "line 2 of pvc://data/talk.jsonl has no assistant turn",
    ),
    "a bad role": (
        "talk.jsonl",
        jsonl(chat(("user", "Hi"), ("assistant", "Hello")), chat(("user", "Hi"), ("poet", "Hello"))),
        "chat",
        {},
        "spec.dataset.uri",
        "line 2 of pvc://data/talk.jsonl: message 1 has role 'poet'; the roles are system, user, assistant",
    ),
    "a chat record without messages": (
        "talk.jsonl",
        jsonl({"text": "Hi"}),
        "chat",
        {},
        "spec.dataset.uri",
        'line 1 of pvc://data/talk.jsonl has no "messages" list',
    ),
    "a message without text": (
        "talk.jsonl",
        jsonl({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]}),
        "chat",
        {},
        "spec.dataset.uri",
        'line 1 of pvc://data/talk.jsonl: message 1 has no "content" text',
    ),
    "too few records to hold one out": (
        "poems.jsonl",
        jsonl({"text": POEMS[0]}),
        "jsonl",
        {},
        "spec.dataset.validationFraction",
        "the data set has 1 record(s)",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_broken_data_file_is_refused_naming_the_field_and_the_line(tmp_path, case):
    name, content, form, fields, field, message = REFUSED[case]
    error = refusal(tmp_path, name, content, form, **fields)
    assert error.field == field and message in str(error)


def test_a_parquet_table_without_the_named_text_column_is_refused(tmp_path):
    path = tmp_path / "poems.parquet"
    pyarrow.parquet.write_table(pyarrow.table({"verse": POEMS, "n": [1, 2, 3]}), path)
    for column, message in (("text", "has no column 'text'; its columns: verse, n"), ("n", "holds int64, not text")):
        with pytest.raises(ConfigError) as error:
            read_split(dataset(uri="pvc://data/poems.parquet", format="parquet", textField=column), path)
        assert error.value.field == "spec.dataset.textField" and message in str(error.value)


def test_a_missing_or_unmounted_file_names_the_uri(tmp_path):
    definition = dataset(uri="pvc://data/gone.jsonl", format="jsonl")
    for path, message in ((tmp_path / "gone.jsonl", "pvc://data/gone.jsonl"), (None, "is not mounted")):
        with pytest.raises(ConfigError) as error:
            read_split(definition, path)
        assert error.value.field == "spec.dataset.uri" and message in str(error.value)
