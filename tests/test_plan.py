"""`opro run --dry-run` prints the plan: each role's model, where it runs and whether a key is there (never the
key), the data and its splits, the steps, the projected calls and tokens, and the cost from the price table."""

from __future__ import annotations

import re

from opro.llm.pricing import price_of
from tests.cli_inprocess import invoke


def plan(outcome) -> dict[str, str]:
    """The plan's lines by their label (`optimizer`, `steps`, `optimizer use`, `cost`, ...)."""
    assert outcome.code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines[0].startswith("ok: ")
    return {m.group(1): m.group(2) for line in lines[1:] if (m := re.match(r"  (\S+(?: use)?)\s+(.*)", line))}


def test_the_embedded_model_plan_counts_calls_and_costs_nothing(tmp_path):
    before = set(tmp_path.rglob("*"))
    shown = plan(invoke(["run", "--task", "tsp", "--steps", "3", "--candidates", "4", "--dry-run"], tmp_path))
    assert shown["optimizer"].startswith("llamacpp:smollm2-opro embedded llama.cpp") and "no key" in shown["optimizer"]
    assert shown["instance"].startswith("instance random-n")
    assert shown["steps"].startswith("3 after step 0 (5 initial solutions); opro proposes 4 a step")
    assert shown["optimizer use"].startswith("12 calls (at most 24 with re-samples)")  # 3 x 4, one re-sample round
    assert shown["cost"] == "$0 (local models)"
    assert set(tmp_path.rglob("*")) == before  # a dry run writes nothing


def test_a_remote_optimizer_shows_its_url_and_key_presence_and_a_priced_cost(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-test-not-a-real-key")
    outcome = invoke(["run", "--task", "linreg", "--seeds", "0-1", "--steps", "2", "--candidates", "2",
                      "--max-tokens", "100", "--optimizer", "openai:gpt-4o-mini", "--base-url",
                      "https://user:pw@llm.example.org/v1?token=abc", "--dry-run"], tmp_path)
    shown = plan(outcome)
    assert shown["optimizer"] == "openai:gpt-4o-mini at https://llm.example.org/v1, key present"
    assert "sk-plan-test" not in outcome.stdout and "pw@" not in outcome.stdout and "abc" not in outcome.stdout
    calls, prompt, completion = (int(n.replace(",", "")) for n in re.findall(
        r"([\d,]+) calls.*~([\d,]+) prompt \+ at most ([\d,]+) completion", shown["optimizer use"])[0])
    assert calls == 2 * 2 * 2 and completion == calls * 100  # 2 runs x 2 steps x 2 proposals, 100 tokens each
    price = price_of("openai:gpt-4o-mini")
    expected = (prompt * price.input + completion * price.output) / 1e6
    assert shown["cost"] == f"at most ${expected:,.4f} (list prices) over 2 runs"

    monkeypatch.delenv("OPENAI_API_KEY")
    shown = plan(invoke(["run", "--task", "linreg", "--optimizer", "openai:unknown-model", "--dry-run"], tmp_path))
    assert "key MISSING" in shown["optimizer"] and shown["cost"].startswith("unknown")
    shown = plan(invoke(["run", "--task", "linreg", "--optimizer", "openai:m", "--base-url",
                         "http://127.0.0.1:8000/v1", "--dry-run"], tmp_path))
    assert shown["optimizer"].endswith("key none (a server on this machine needs none)")


def test_a_prompt_task_plan_shows_its_splits_and_the_scorer_calls(tmp_path, shared_data):
    shown = plan(invoke(["run", "--task", "bbh", "--data", str(shared_data / "bbh"), "--set",
                         "problem.bbh_task=navigate", "--steps", "2", "--candidates", "3", "--scorer",
                         "openai:gpt-4o-mini", "--max-cost", "1", "--track", "mlflow", "--dry-run"], tmp_path))
    train = int(re.search(r"train (\d+)", shown["data"]).group(1))
    assert shown["data"].startswith("bbh: train ") and re.search(r"test \d+", shown["data"])
    assert shown["scorer"].startswith("openai:gpt-4o-mini at https://api.openai.com/v1, key ")
    instructions = 1 + 2 * 3  # the initial instruction, then 3 proposals in each of 2 steps
    assert shown["scorer use"].startswith(f"{instructions * train:,} calls,")
    assert shown["cost"].endswith("a budget may stop it sooner: max_cost 1.0")
    assert shown["track"] == "mlflow (defaults)"
