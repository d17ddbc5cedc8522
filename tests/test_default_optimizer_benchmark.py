"""`benchmarks/default_optimizer.py` run in pieces: `--seeds 5-9` after `--seeds 0-4` into the same folder
adds the new seeds to each model's run group and keeps every seed's row in seeds.csv, so a study can grow
its seeds across sittings without losing the runs it already has."""

from __future__ import annotations

import csv
import json

from benchmarks.default_optimizer import optimizer_settings, per_seed_rows, run_cell, write_seeds

SMALL = {"loop.steps": 1, "loop.candidates_per_step": 2, "loop.stop_at_optimum": False}


def test_a_later_seed_range_joins_the_group_and_keeps_the_earlier_runs(tmp_path, default_model):
    settings = {**optimizer_settings("tuned", 1, 1, False, None), **SMALL}
    first = run_cell(tmp_path, "linreg", "tuned", [0], settings)
    write_seeds(tmp_path / "seeds.csv", per_seed_rows(tmp_path, "linreg", "tuned", [0]))
    group = tmp_path / "linreg" / "linreg" / "tuned"
    kept = (group / "seed0" / "summary.json").read_bytes()

    later = run_cell(tmp_path, "linreg", "tuned", [1], settings)
    write_seeds(tmp_path / "seeds.csv", per_seed_rows(tmp_path, "linreg", "tuned", [1]))

    assert json.loads((group / "group.json").read_text())["runs"] == ["seed0", "seed1"]
    assert (group / "seed0" / "summary.json").read_bytes() == kept  # the earlier run is not rerun
    assert first == [json.loads(kept)]
    assert later == [json.loads((group / "seed1" / "summary.json").read_text())]
    with (tmp_path / "seeds.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["task"], r["model"], r["seed"]) for r in rows] == [("linreg", "tuned", "0"), ("linreg", "tuned", "1")]


def test_a_rerun_seed_replaces_its_row_in_seeds_csv(tmp_path):
    row = {"task": "tsp", "model": "qwen", "seed": 3, "n_candidates": 40, "n_valid": 30, "initial_gap_percent": 9.0,
           "gap_percent": 4.0, "solved": False, "prompt_tokens": 1, "completion_tokens": 2, "seconds": 3.0}
    write_seeds(tmp_path / "seeds.csv", [row, {**row, "model": "tuned"}])
    write_seeds(tmp_path / "seeds.csv", [{**row, "gap_percent": 2.5}])
    with (tmp_path / "seeds.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["gap_percent"]) for r in rows] == [("qwen", "2.5"), ("tuned", "4.0")]
