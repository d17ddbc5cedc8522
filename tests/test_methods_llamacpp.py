"""EvoPrompt GA and DE and APE for real: two steps on BBH navigate with the embedded model (SmolLM2-135M) as
optimizer and scorer, tiny settings (as tests/test_prompt_run.py's)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from opro.config import build_config
from opro.results import CANDIDATE_COLUMNS, STEP_COLUMNS
from opro.runner import start_run

pytestmark = pytest.mark.slow

TINY = {"loop.steps": 2, "loop.population": 2, "loop.max_tokens": 40, "loop.resample_rounds": 0,
        "problem.train_limit": 2, "problem.scorer_max_tokens": 8, "optimizer.cache_prompt": True,
        "optimizer.threads": 1, "loop.stop_at_optimum": False, "problem.bbh_task": "navigate"}
COLUMNS = {"evoprompt-ga": ["operator", "parents"], "evoprompt-de": ["operator", "parents"],
           "ape": ["operator", "parents", "demos"]}
OPERATORS = {"evoprompt-ga": {"ga"}, "evoprompt-de": {"de"}, "ape": {"induction", "resample"}}


@pytest.mark.parametrize("method", ["evoprompt-ga", "evoprompt-de", "ape"])
def test_method_two_steps_with_the_embedded_model(default_model, shared_data, tmp_path, method):
    config = build_config("bbh", {**TINY, "problem.data": str(shared_data / "bbh"), "results_root": str(tmp_path),
                                  "loop.method": method})
    run, summary = start_run(config)
    steps = pd.read_csv(run.path / "steps.csv")
    candidates = pd.read_csv(run.path / "candidates.csv", keep_default_na=False, dtype=str)
    assert steps["step"].tolist() == [0, 1, 2] and list(steps.columns) == STEP_COLUMNS + ["scorer_calls"]
    assert list(candidates.columns) == CANDIDATE_COLUMNS + COLUMNS[method]
    assert set(candidates.loc[candidates["step"] != "0", "operator"]) == OPERATORS[method]
    assert (candidates["step"] != "0").sum() == 4  # two proposals a step (the population)
    assert steps["scorer_calls"].sum() == 2 * (steps["n_new"].sum())  # two training questions each
    calls = [json.loads(line) for line in (run.path / "llm_calls.jsonl").read_text().splitlines()]
    assert {c["temperature"] for c in calls} == {0.9 if method == "ape" else 0.5}
    assert summary["stop_reason"] == "steps" and summary["steps_run"] == 2 and summary["best_solution"]
