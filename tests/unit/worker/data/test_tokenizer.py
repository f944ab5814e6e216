"""lmaas_worker.data.tokenizer: a byte-level BPE trained on the text, the same in every process, and a
model folder's tokenizer."""

import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from lmaas_api.errors import ConfigError
from lmaas_worker.data import shakespeare
from lmaas_worker.data.tokenizer import END_OF_TEXT, PADDING, load_tokenizer, train_tokenizer

TRAIN_IN_A_PROCESS = (
    "import sys; from lmaas_worker.data import shakespeare; "
    "from lmaas_worker.data.tokenizer import train_tokenizer; "
    "sys.stdout.write(train_tokenizer(shakespeare.text(), 700).backend_tokenizer.to_str())"
)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(shakespeare.text(), 700)


def test_it_has_the_size_asked_for_and_its_special_tokens(tokenizer):
    assert len(tokenizer) == 700
    assert (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token) == (END_OF_TEXT, END_OF_TEXT, PADDING)
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    assert len(train_tokenizer("a tiny text", 5000)) < 300  # no more pairs to merge: bytes, specials, a few merges


def test_any_text_encodes_and_decodes_unchanged_bytes_it_never_saw_included(tokenizer):
    text = "Shall I compare thee to a summer's day?\n\tÜber naïve 東京 🌹"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode())  # merges learnt from the text make common words one token
    assert len(tokenizer(" thee", add_special_tokens=False)["input_ids"]) == 1


def test_every_process_trains_the_same_tokenizer(tokenizer):
    runs = [
        subprocess.run(
            [sys.executable, "-c", TRAIN_IN_A_PROCESS], capture_output=True, text=True, check=True, timeout=120
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] == tokenizer.backend_tokenizer.to_str()


def test_a_saved_tokenizer_loads_back_with_its_special_tokens(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    for loaded in (load_tokenizer(tmp_path, "spec.model.hf.uri"), AutoTokenizer.from_pretrained(tmp_path)):
        assert loaded("To be, or not to be")["input_ids"] == tokenizer("To be, or not to be")["input_ids"]
        assert (loaded.eos_token, loaded.pad_token, len(loaded)) == (END_OF_TEXT, PADDING, 700)


def test_a_folder_without_a_tokenizer_is_a_configuration_error_naming_the_field(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_tokenizer(tmp_path, "spec.model.hf.uri")
    assert error.value.field == "spec.model.hf.uri" and str(tmp_path) in str(error.value)
