"""Data files of the wrong shape are one line naming the file and the record; valid small files load."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opro.errors import OproError
from opro.prompting.data import load_examples
from tests.cli_inprocess import invoke


def _write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(("name", "text", "message"), [
    ("g.jsonl", "1\n2\n", "record 1: expected an object with a question and an answer, got 1"),
    ("g.jsonl", "null\n", "record 1: expected an object with a question and an answer, got None"),
    ("g.jsonl", '{"question": "q", "answer": "1"}\n[1, 2]\n', "record 2: expected an object"),
    ("g.jsonl", '{"question": "q", "answer": ""}\n', "record 1: the field 'answer' is empty"),
    ("g.jsonl", '{"question": "q", "answer": "  "}\n', "record 1: the field 'answer' is empty"),
    ("g.jsonl", '{"question": "", "answer": "3"}\n', "record 1: the field 'question' is empty"),
    ("g.jsonl", '{"question": "q", "answer": []}\n', "record 1: the answer list is empty"),
    ("g.jsonl", '{"question": "q", "answer": {"x": 1}}\n', "record 1: the answer must be text or a number"),
    ("g.jsonl", '{"question": "q"}\n', "record 1: a gsm8k example has none of the fields answer"),
    ("g.jsonl", '{"question": "q", "answer": "1"}\n{oops\n', "line 2 is not JSON"),
    ("g.jsonl", b'{"question": "\xff", "answer": "1"}\n', "not UTF-8 text"),
    ("g.json", '"just a string"', "expected a list of examples, got str"),
    ("g.tsv", "only one column\nsecond line\n", "line 1 has 1 column; expected question<TAB>answer"),
    ("g.tsv", "q\t\n", "record 1: the field 'answer' is empty"),
])
def test_malformed_records_name_the_file_and_the_record(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(OproError) as caught:
        load_examples("gsm8k", "train", str(path))
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("options", "message"), [
    ("A)1 B)2", "'options' must be a non-empty list of strings"),
    ([], "'options' must be a non-empty list of strings"),
    ([1, 2], "'options' must be a non-empty list of strings"),
    (None, "a aqua example has none of the fields options"),
])
def test_aqua_options_must_be_a_list_of_strings(tmp_path, options, message):
    path = _write(tmp_path, "aqua.jsonl", json.dumps({"question": "q", "options": options, "correct": "A"}) + "\n")
    with pytest.raises(OproError, match="record 1: " + message.replace("(", r"\(")):
        load_examples("aqua", "test", str(path))


def test_a_valid_one_record_jsonl_file_loads(tmp_path):
    path = _write(tmp_path, "one.jsonl", '{"question": "What is 2+2?", "answer": "4"}\n')
    [example] = load_examples("gsm8k", "train", str(path))
    assert (example.question, example.answer, example.kind) == ("What is 2+2?", "4", "number")
    single = _write(tmp_path, "one.json", '{"question": "Is it?", "answer": true}')
    [example] = load_examples("bbh", "all", str(single), "web_of_lies")
    assert example.answer == "True"


def test_parquet_and_aqua_lists_still_load(tmp_path):
    path = tmp_path / "aqua.parquet"
    pd.DataFrame([{"question": "1+1?", "options": ["A)2", "B)3"], "correct": "A"}]).to_parquet(path)
    [example] = load_examples("aqua", "test", str(path))
    assert example.answer == "(A)" and "(A)2" in example.question


@pytest.mark.parametrize("text", ["1\n", '{"question": "q", "answer": ""}\n', "null\n"])
def test_opro_eval_refuses_bad_records_in_one_line_before_any_model(tmp_path, text):
    path = _write(tmp_path, "bad.jsonl", text)
    outcome = invoke(["eval", "--task", "gsm8k", "--data", str(path), "--instruction", "x"], tmp_path)
    assert outcome.escaped is None, outcome.escaped
    assert outcome.refused_in_one_line, outcome.stderr
    assert "bad.jsonl: record 1" in outcome.stderr
    assert not (tmp_path / "results").exists()
