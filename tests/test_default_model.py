"""The tuned default optimizer, `llamacpp:smollm2-opro`: the presets resolve to the shipped adapter with its
sha256 checked, llama.cpp applies it as transformers does with the merged weights, and `opro run` ends with
the comparison against the baselines."""

from __future__ import annotations

import json

import pytest

from opro.cli import main
from opro.compare import run_table
from opro.config import build_config
from opro.errors import OproError
from opro.llm import models
from opro.llm.base import Request
from opro.llm.models import GGUF_SHA256, TUNED_ADAPTER_SHA256, resolve_model, sha256_file, tuned_adapter_path
from tests.tiers import require_extra


@pytest.mark.parametrize("task", ["tsp", "linreg"])
def test_the_presets_run_the_tuned_default(task, default_model):
    assert build_config(task).optimizer.spec == "llamacpp:smollm2-opro"
    gguf, adapter = resolve_model("smollm2-opro")
    assert gguf == default_model and sha256_file(gguf) == GGUF_SHA256
    assert adapter == tuned_adapter_path() and sha256_file(adapter) == TUNED_ADAPTER_SHA256
    assert adapter.parent.name == "smollm2-opro" and adapter.stat().st_size <= 15 * 2**20
    assert resolve_model("smollm2") == (gguf, None)  # the base model stays available
    for name in ("recipe.json", "rl_train.json", "README.md"):
        assert (adapter.parent / name).is_file()  # the training config, log and evaluation beside it
    assert json.loads((adapter.parent / "recipe.json").read_text())["adapter_sha256"] == TUNED_ADAPTER_SHA256


def test_a_tampered_adapter_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(models, "TUNED_ADAPTER_SHA256", "0" * 64)
    with pytest.raises(OproError, match="sha256 mismatch"):
        tuned_adapter_path()
    with pytest.raises(SystemExit) as stop:
        main(["run", "--task", "tsp", "--results", str(tmp_path), "--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "adapter.gguf sha256 mismatch" in err and "\n" not in err
    assert not any(tmp_path.rglob("config.json"))  # refused before a run directory exists


def test_the_run_table_shows_the_baselines_and_gaps():
    summary = {"best_score": 610.0, "initial_best": 731.664, "optimum": 608.179, "minimize": True,
               "baselines": {"nearest_neighbor": 623.0, "farthest_insertion": 610.0, "two_opt": 608.179,
                             "local_search": 608.179, "optimal": 608.179}}
    lines = run_table(summary).splitlines()
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "OPRO best found", "initial best (step 0)", "nearest neighbour", "farthest insertion", "2-opt",
        "Or-opt + 2-opt local search", "optimum"]
    assert lines[2].endswith("20.30%") and lines[-1].endswith("0.00%")
    assert run_table({**summary, "optimum": 0.0, "baselines": {"optimal": 0.0}}).splitlines()[-1].endswith("n/a")
    assert run_table({"best_score": 1.0, "baselines": {}}) == ""


@pytest.mark.slow
def test_llamacpp_applies_the_shipped_adapter_as_its_merged_weights(tmp_path, converted_default_model):
    """Greedy answers to held-out meta-prompts: llama.cpp (Q4_1 base + the GGUF adapter) and transformers
    (the dequantized base with the adapter merged into its weights) write the same text."""
    require_extra("peft")
    from opro.llm.hf import HFLLM
    from opro.llm.llamacpp import LlamaCppLLM
    from opro.rl.episodes import fresh_episodes
    from opro.rl.lora import import_gguf

    base, _ = converted_default_model  # where `opro rl tune` leaves the converted base
    adapter = import_gguf(tuned_adapter_path(), base, tmp_path / "adapter")
    episodes = fresh_episodes("tsp", 2, seed=11) + fresh_episodes("linreg", 2, seed=11)
    requests = [Request(tuple(e.prompt), 0.0, 40, 0) for e in episodes]
    texts = {}
    for name, make in (("base", lambda: LlamaCppLLM("smollm2", threads=1)),
                       ("gguf", lambda: LlamaCppLLM("smollm2-opro", threads=1)),
                       ("hf", lambda: HFLLM(str(adapter), threads=1))):
        llm = make()
        try:
            texts[name] = [c.text for c in llm.generate(requests)]
        finally:
            llm.close()
    assert texts["gguf"] == texts["hf"]
    assert texts["gguf"] != texts["base"]  # the adapter is applied
    assert "<trace>" in texts["gguf"][0] and "[" in texts["gguf"][-1]
