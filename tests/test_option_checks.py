"""Options that do not apply are one line and exit 2, not silently ignored; a given file is checked whether or
not the run ends up using it; a bad LoRA adapter is named as the culprit, not the base model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opro.errors import OproError
from opro.llm.llamacpp import LlamaCppLLM
from opro.llm.models import tuned_adapter_path
from tests.cli_inprocess import invoke
from tests.rundir_tools import make_run, snapshot


def test_resume_refuses_a_task_option(tmp_path):
    run = make_run(tmp_path)  # a linreg run
    before = snapshot(run)
    outcome = invoke(["run", "--resume", str(run), "--task", "tsp", "--steps", "3"], tmp_path)
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert "connection (--base-url, --set scorer.base_url=...) may change (got --task)" in outcome.stderr
    assert snapshot(run) == before


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "0-2"], "--seeds sets the linear-regression searches"),
    (["--steps", "3"], "--steps sets the linear-regression searches"),
    (["--task", "linreg", "--n", "10"], "--n is a TSP option"),
    (["--task", "linreg", "--instances", "2"], "--instances is a TSP option"),
    (["--task", "linreg", "--time-limit", "5"], "--time-limit is a TSP option"),
])
def test_baselines_refuse_the_other_problems_options(args, message, tmp_path):
    outcome = invoke(["baselines", *args], tmp_path)
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert message in outcome.stderr


@pytest.mark.parametrize(("content", "message"), [
    (b"[gpt-4o\ninput = 1", "cannot read price table"),
    (b'["gpt-4o"]\ninput = "cheap"\noutput = 1\n', "needs numbers `input` and `output`"),
    (b'title = "prices"\n', "needs numbers `input` and `output`"),
    (b'["gpt-4o"]\ninput = -1.0\noutput = 1.0\n', "needs numbers `input` and `output`"),
    (b"\xff\xfe not text", "cannot read price table"),
])
def test_a_price_table_is_checked_even_when_no_call_is_priced(content, message, tmp_path):
    table = tmp_path / "prices.toml"
    table.write_bytes(content)
    outcome = invoke(["run", "--task", "tsp", "--prices", str(table), "--dry-run"], tmp_path)  # llamacpp: free
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert message in outcome.stderr


@pytest.fixture(scope="module")
def bad_adapters(tmp_path_factory, default_model) -> dict[str, Path]:
    """A text file, an adapter cut short, and the base model given as an adapter."""
    folder = tmp_path_factory.mktemp("adapters")
    (folder / "text.gguf").write_text("not a model\n")
    (folder / "cut.gguf").write_bytes(tuned_adapter_path().read_bytes()[:1_000_000])
    shutil.copy(default_model, folder / "base.gguf")
    return {"text": folder / "text.gguf", "cut": folder / "cut.gguf", "base": folder / "base.gguf"}


@pytest.mark.parametrize(("name", "message"), [("text", "is not a GGUF file"), ("cut", "is cut short"),
                                               ("base", "is not a GGUF LoRA adapter")])
def test_a_bad_lora_adapter_is_named(name, message, bad_adapters, tmp_path):
    adapter = bad_adapters[name]
    outcome = invoke(["run", "--set", f"optimizer.lora={adapter}", "--dry-run"], tmp_path)
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert str(adapter) in outcome.stderr and message in outcome.stderr
    assert "SmolLM2-135M-Instruct" not in outcome.stderr
    with pytest.raises(OproError, match=message):  # the backend checks it too, before llama.cpp loads anything
        LlamaCppLLM("smollm2", threads=1, lora=str(adapter))


def test_the_shipped_adapter_passes_the_check():
    from opro.llm.gguf_header import check_lora_adapter

    check_lora_adapter(tuned_adapter_path())
