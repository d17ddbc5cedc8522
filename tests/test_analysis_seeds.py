"""Analysis that does not mislead: seeds are the replicates, a TSPLIB instance is its own setting, and a prompt
task with no network fails at once."""

from __future__ import annotations

import shutil
import socket

import pytest

from opro import analysis, plots
from opro.analysis import group_label
from opro.compare import comparison_table
from tests.analysis_runs import write_group
from tests.cli_inprocess import invoke


@pytest.fixture(scope="module")
def repeated_seed(tmp_path_factory):
    """TSP n=6 seeds 0 and 1, plus a copy of the seed-0 run in a second group: three runs, two seeds."""
    root = tmp_path_factory.mktemp("results")
    group = write_group(root, "tsp", "g1", [0, 1])
    again = root / "tsp" / "g2"
    again.mkdir()
    (again / "group.json").write_text((group / "group.json").read_text())
    shutil.copytree(group / "seed0", again / "seed0")
    return root


def test_runs_of_one_seed_are_one_replicate(repeated_seed):
    results = analysis.load(repeated_seed, candidates=False, finished=True)
    row = comparison_table(results).query("kind == 'opro'").iloc[0]
    assert (row["runs"], row["seeds"]) == (3, 2)
    gaps = results.runs.groupby("seed")["gap_percent"].mean()
    assert row["gap_mean"] == pytest.approx(gaps.mean())


def test_compare_and_report_warn_of_a_repeated_seed(repeated_seed, tmp_path):
    compared = invoke(["compare", str(repeated_seed), "--out", str(tmp_path / "cmp"), "--no-plot"], tmp_path)
    assert compared.code == 0, compared.escaped or compared.stderr
    assert "opro: warning: tsp n=6 / opro scripted:replay: 3 runs of 2 distinct seed(s); seed(s) 0 repeat" \
        in compared.stderr
    table = (tmp_path / "cmp" / "table.md").read_text()
    assert "| opro scripted:replay | 3 (2 seeds) |" in table and "seed(s) 0 repeat" in table
    reported = invoke(["report", str(repeated_seed), "--out", str(tmp_path / "r.html")], tmp_path)
    assert reported.code == 0, reported.escaped or reported.stderr
    assert "seed(s) 0 repeat" in reported.stderr and "seed(s) 0 repeat" in (tmp_path / "r.html").read_text()


def test_distinct_seeds_give_no_warning(repeated_seed, tmp_path):
    compared = invoke(["compare", str(repeated_seed / "tsp" / "g1"), "--out", str(tmp_path / "c"), "--no-plot"],
                      tmp_path)
    assert compared.code == 0 and "warning" not in compared.stderr
    assert "| opro scripted:replay | 2 |" in (tmp_path / "c" / "table.md").read_text()


def test_the_curve_band_is_over_seeds(repeated_seed):
    results = analysis.load(repeated_seed)
    figure = plots.optimization_curve(results, value="score", scatter=False)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert any("mean ± SE (3 runs of 2 seeds)" in label for label in labels), labels


def test_a_tsplib_instance_is_its_own_setting():
    assert group_label("tsp", "tsp", {"instance": "burma14", "n": 14}) == "tsp burma14"
    assert group_label("tsp", "tsp", {"instance": "random-n14-s3", "n": 14}) == "tsp n=14"


def test_a_prompt_task_without_network_fails_at_once(monkeypatch, tmp_path):
    with socket.socket() as closed:  # a port nobody listens on: the hub's host cannot be reached
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    outcome = invoke(["run", "--task", "gsm8k", "--dry-run"], tmp_path)
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert f"cannot reach the Hugging Face hub (127.0.0.1:{port}: Connection refused)" in outcome.stderr
    assert "--data PATH" in outcome.stderr and not list(tmp_path.iterdir())


