"""Bad settings, files and paths are refused with one line and exit 2 before anything is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opro.config import MAX_REPEATS, Range, build_config
from opro.errors import OproError
from opro.problems.tsp import MAX_NODES
from tests.cli_inprocess import invoke

LINREG = ["--task", "linreg"]


def _created(root: Path, before: set[Path]) -> set[Path]:
    return set(root.rglob("*")) - before


def refused(tmp_path: Path, args: list[str], message: str) -> None:
    before = set(tmp_path.rglob("*"))
    outcome = invoke(args, tmp_path)
    assert outcome.escaped is None, outcome.escaped
    assert outcome.refused_in_one_line, (outcome.code, outcome.stderr)
    assert message in outcome.stderr, outcome.stderr
    assert not _created(tmp_path, before)


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "-1"], "seed must be in [0, 4294967295], got -1"),
    (["--seed", str(2**40)], "seed must be in [0, 4294967295]"),
    ([*LINREG, "--set", "problem.n_points=0"], "problem.n_points must be in [2, 100000], got 0"),
    ([*LINREG, "--set", "problem.init_low=30"], "problem.init_low must be <= problem.init_high, got 30 > 20"),
    (["--set", "problem.coord_range=-5"], "problem.coord_range must be in [1, 1000000], got -5"),
    ([*LINREG, "--set", "problem.w_true=nan"], "problem.w_true must be a finite number, got nan"),
    ([*LINREG, "--set", "problem.b_true=-inf"], "problem.b_true must be a finite number, got -inf"),
    ([*LINREG, "--set", "problem.w_true=1e300"], "problem.w_true must be in [-1000000, 1000000]"),
    (["--set", 'problem.kind="x"'], "unknown problem 'x'; known: bbh, gsm8k, linreg, mmlu, prompt, tsp"),
    (["--set", "problem.kind=5"], "problem must be str, got 5"),
    (["--seeds", "0-999999999999"], f"has more than {MAX_REPEATS} seeds"),
    (["--seeds", "0-99", "--instances", "101"], f"a group has at most {MAX_REPEATS} runs"),
    (["--n", "100000"], f"problem.n must be in [3, {MAX_NODES}], got 100000"),
    (["--max-cost", "nan"], "loop.max_cost must be a finite number, got nan"),
    (["--max-cost", "inf"], "loop.max_cost must be a finite number, got inf"),
    (["--max-cost", "-1"], "loop.max_cost must be > 0, got -1"),
    (["--temperature", "nan"], "loop.temperature must be a finite number"),
    (["--set", "optimizer.timeout=0"], "optimizer.timeout must be in (0, 86400]"),
    (["--run-id", "../../../x"], "run id '../../../x' must be one name"),
    (["--run-id", "a/b"], "run id 'a/b' must be one name"),
    (["--run-id", ".."], "run id '..' must be one name"),
])
def test_out_of_range_settings_are_refused_before_any_file(tmp_path, args, message):
    refused(tmp_path, ["run", "--dry-run", *args], message)


def test_a_valid_dry_run_creates_nothing(tmp_path):
    before = set(tmp_path.rglob("*"))
    outcome = invoke(["run", "--dry-run", "--seeds", "0-2", "--run-id", "grid_1"], tmp_path)
    assert outcome.code == 0, outcome.stderr
    assert "ok: 3 run(s) of tsp" in outcome.stdout
    assert not _created(tmp_path, before)


def test_ranges_sit_next_to_their_settings():
    assert Range(0, 5).describe() == "in [0, 5]" and Range(0, None, above=True).describe() == "> 0"
    with pytest.raises(OproError, match="loop.top_k must be in"):
        build_config("tsp", {"loop.top_k": 0})


def _preset(tmp_path: Path, text: str | bytes, name: str = "my.toml") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


TSP_PRESET = 'template = "tsp"\n[problem]\nkind = "tsp"\nn = 5\n'


@pytest.mark.parametrize(("text", "message"), [
    (b'template = "tsp"\n[problem]\nkind = "\xff\xfe"\n', "is not UTF-8 text (byte"),
    (TSP_PRESET + "loop = 5\n", "unknown setting 'problem.loop' for tsp"),  # a key after a table belongs to it
    ('loop = 5\n' + TSP_PRESET, "loop must be a table ([loop]), got 5"),
    ('optimizer = "x"\n' + TSP_PRESET, "optimizer must be a table ([optimizer]), got 'x'"),
    ('problem = [1]\ntemplate = "tsp"\n', "problem must be a table ([problem]), got [1]"),
])
def test_malformed_preset_files_are_one_line(tmp_path, text, message):
    refused(tmp_path, ["run", "--dry-run", "--task", _preset(tmp_path, text)], message)


@pytest.mark.parametrize(("meta", "entry", "message"), [
    ("Points: {points}\n{history}\n{nodes}\n", "{solution} {score}\n", "unknown field {nodes}"),
    ("Points: {points}\n{history\n", "{solution} {score}\n", "expected '}' before end of string"),
    ("Points: {points}\n{history}\n", "{solution} {score\n", "(entry)"),
    ("Points: {points}\n{history}\n}\n", "{solution} {score}\n", "Single '}' encountered"),
    ("{history} {0}\n", "{solution} {score}\n", "unknown field {0}"),
    ("{history} {points.x}\n", "{solution} {score}\n", "unknown field {points.x}"),
    ("{history}\n", "{\n}", "(entry): unknown field {"),  # a line break in the name: still one line
])
def test_templates_are_rendered_once_before_the_run(tmp_path, meta, entry, message):
    (tmp_path / "t.meta.txt").write_text(meta)
    (tmp_path / "t.entry.txt").write_text(entry)
    preset = _preset(tmp_path, f'template = "{tmp_path / "t.meta.txt"}"\n[problem]\nkind = "tsp"\nn = 5\n')
    refused(tmp_path, ["run", "--dry-run", "--task", preset], message)
    refused(tmp_path, ["run", "--task", preset, "--steps", "1"], message)  # the real run: no model, no folder


def test_a_template_for_another_problem_is_refused(tmp_path):
    refused(tmp_path, ["run", "--dry-run", "--task", "linreg", "--set", 'template="tsp"'], "unknown field {points}")


@pytest.mark.parametrize(("text", "message"), [
    (b'task = "tsp"\nname = "\xc3\x28"\n', "is not UTF-8 text"),
    ('task = "tsp"\nresults = 5\n', "results must be a string, got 5"),
    ('task = "tsp"\nname = 5\n', "name must be a string, got 5"),
    ('task = "tsp"\n[resources]\nnum_cpus = "two"\n', "resources.num_cpus must be float, got 'two'"),
    ('task = "tsp"\n[resources]\nnum_cpus = -1\n', "resources.num_cpus must be in (0, 4096]"),
    ('task = "tsp"\n[resources]\nmemory = nan\n', "resources.memory must be a finite number"),
    ('task = "tsp"\n[axes]\nseed = "0-99"\n"problem.seed" = "0-200"\n', "cells; a sweep has at most"),
    ('task = "tsp"\n[set]\n"loop.steps" = -3\n', "loop.steps must be in [0,"),
    ('task = "linreg"\n[set]\n"template" = "tsp"\n', "template tsp (meta-prompt): unknown field {points}"),
])
def test_malformed_sweep_files_are_one_line(tmp_path, text, message):
    path = _preset(tmp_path, text, "grid.toml")
    refused(tmp_path, ["sweep", path, "--dry-run"], message)
    refused(tmp_path, ["sweep", path], message)


@pytest.mark.parametrize(("args", "message"), [
    (["baselines", "--out", "a_file/tables"], "a_file is a file, not a folder"),
    (["baselines", "--out", "/proc/opro-tables"], "cannot write --out /proc/opro-tables"),
    (["compare", ".", "--out", "a_file/cmp"], "a_file is a file, not a folder"),
    (["compare", ".", "--out", "/proc/opro-cmp"], "cannot write --out /proc/opro-cmp"),
    (["report", ".", "--out", "a_file/r.html"], "a_file is a file, not a folder"),
    (["report", ".", "--out", "/proc/r.html"], "cannot write --out /proc/r.html"),
    (["report", ".", "--screenshot", "a_file/r.png"], "a_file is a file, not a folder"),
    (["rl", "export", ".", "--format", "grpo", "--out", "a_file/x.jsonl"], "a_file is a file, not a folder"),
    (["rl", "export", ".", "--format", "grpo", "--out", "/proc/x.jsonl"], "cannot write --out /proc/x.jsonl"),
    (["rl", "convert", "--out", "a_file/model"], "a_file is a file, not a folder"),
    (["run", "--dry-run", "--set", 'optimizer.cache="a_file/c.sqlite"'], "LLM-call cache a_file/c.sqlite: a_file"),
    (["run", "--dry-run", "--set", 'optimizer.cache="/proc/c.sqlite"'], "cannot write LLM-call cache /proc/c"),
    (["run", "--steps", "1", "--set", 'optimizer.cache="/proc/c.sqlite"'], "cannot write LLM-call cache"),
    (["run", "--dry-run", "--results", "a_file/r"], "results root a_file/r: a_file is a file"),
    (["run", "--steps", "1", "--results", "/proc/r"], "cannot write results root /proc/r"),
    (["sweep", "grid.toml", "--results", "a_file/r"], "results root a_file/r: a_file is a file"),
])
def test_output_paths_under_a_file_or_in_proc_are_refused(tmp_path, args, message):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "grid.toml").write_text('task = "tsp"\n')
    refused(tmp_path, args, message)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_baselines_time_limit_must_be_a_positive_number(tmp_path, value):
    refused(tmp_path, ["baselines", "--time-limit", value], "--time-limit must be in (0, ")


def test_baselines_json_is_strict_json(tmp_path):
    outcome = invoke(["baselines", "--task", "linreg", "--steps", "1", "--json", "--out", "t"], tmp_path)
    assert outcome.code == 0, outcome.stderr

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    report = json.loads(outcome.stdout, parse_constant=no_constants)
    closed_form = next(row for row in report["table"] if row["method"] == "closed_form")
    assert closed_form["steps_se"] is None  # one seed: the standard error is undefined, not NaN


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "nan"], "learning_rate must be in (0, 1], got nan"),
    (["--lr", "-1"], "learning_rate must be in (0, 1], got -1"),
    (["--beta", "inf", "--algo", "dpo"], "beta must be in (0, 1000], got inf"),
    (["--steps", "0"], "steps must be in [1, "),
    (["--seed", "-3"], "seed must be in [0, "),
])
def test_rl_train_settings_are_checked_before_the_model_loads(tmp_path, args, message):
    algo = [] if "--algo" in args else ["--algo", "sft"]
    refused(tmp_path, ["rl", "train", "--model", "hf:no-model", *algo, *args], message)
