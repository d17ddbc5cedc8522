"""`opro compare` and `opro report` over trees with a bad run: it is skipped with a warning naming it, the
rest is reported; with no readable run, one line and exit 2. Infinite values do not crash tables or plots."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from opro import analysis
from tests.rundir_tools import make_run, opro


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("made"))


def tree(root: Path, made: Path, names=("a", "b")) -> Path:
    for name in names:
        shutil.copytree(made, root / "tree" / name)
    return root / "tree"


def set_lengths(run: Path) -> None:
    state = json.loads((run / "state.json").read_text())
    state["lengths"] = {name: (run / name).stat().st_size for name in state["lengths"]}
    (run / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize("damage", [
    lambda run: (run / "summary.json").write_text("[1, 2]"),
    lambda run: (run / "summary.json").write_text('{"best_score": "low"}'),
    lambda run: (run / "config.json").write_text('{"config": null}'),
    lambda run: (run / "state.json").write_text('{"lengths": {"steps.csv": 100000000000000000000}}'),
    lambda run: (run / "steps.csv").write_text("step,best_so_far\nx,y\n"),
])
def test_an_unreadable_run_is_skipped_with_a_warning_naming_it(tmp_path, made, damage):
    root = tree(tmp_path, made)
    damage(root / "b")
    compared = opro("compare", str(root), "--out", str(tmp_path / "cmp"))
    assert compared.code == 0, compared
    assert compared.stderr.strip().splitlines() == [
        line for line in compared.stderr.strip().splitlines() if line.startswith("opro: warning: skipped")]
    assert str(root / "b") in compared.stderr and "1 runs" in compared.stdout
    assert pd.read_csv(tmp_path / "cmp" / "runs.csv")["run"].tolist() == ["a"]
    reported = opro("report", str(root), "--out", str(tmp_path / "report.html"))
    assert reported.code == 0 and str(root / "b") in reported.stderr, reported
    with pytest.warns(UserWarning, match="skipped the unreadable run"):
        results = analysis.load(root)
    assert list(results.skipped) == [str(root / "b")] and results.runs["run"].tolist() == ["a"]


def test_the_report_skips_a_run_whose_candidates_csv_is_empty(tmp_path, made):
    root = tree(tmp_path, made)
    (root / "b" / "candidates.csv").write_text("")  # compare reads no candidates; the report plots them
    reported = opro("report", str(root), "--out", str(tmp_path / "report.html"))
    assert reported.code == 0, reported
    assert reported.stderr.startswith(f"opro: warning: skipped the unreadable run {root / 'b'}: candidates.csv")


def test_a_tree_with_no_readable_run_is_one_line_and_exit_2(tmp_path, made):
    root = tree(tmp_path, made)
    for name in ("a", "b"):
        (root / name / "summary.json").write_text("[]")
    for command in (["compare", str(root), "--out", str(tmp_path / "cmp")], ["report", str(root)]):
        done = opro(*command)
        assert done.code == 2 and len(done.lines) == 1, done
        assert done.lines[0].startswith("opro: error: no readable run under") and "2 skipped" in done.lines[0]


def test_infinite_scores_do_not_crash_tables_or_plots(tmp_path, made):
    root = tree(tmp_path, made)
    run = root / "b"
    summary = json.loads((run / "summary.json").read_text())
    summary.update(best_score=float("inf"), gap_percent=float("inf"), gap_absolute=float("inf"))
    (run / "summary.json").write_text(json.dumps(summary))
    for name, pattern in (("steps.csv", r"\n(\d+),[0-9.e+]+,"), ("candidates.csv", r",False,[0-9.e+]+,")):
        text = (run / name).read_text()
        (run / name).write_text(re.sub(pattern, (r"\n\1,inf," if name == "steps.csv" else ",False,inf,"), text))
    set_lengths(run)
    compared = opro("compare", str(root), "--out", str(tmp_path / "cmp"))
    assert compared.code == 0, compared  # the two runs are copies of one seed: that warning only
    assert [line for line in compared.stderr.splitlines() if "repeat" not in line] == [], compared
    assert list((tmp_path / "cmp").glob("best_so_far-*.png"))
    reported = opro("report", str(root), "--out", str(tmp_path / "report.html"))
    assert reported.code == 0, reported
    assert "inf" in (tmp_path / "report.html").read_text()
