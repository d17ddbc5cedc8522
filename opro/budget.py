"""Methods at equal budget: best training accuracy against scorer calls, the x axis that is fair to methods
that score different numbers of candidates per step (OPRO: 8 a step; EvoPrompt and APE: a population).

A prompt run's steps.csv has `scorer_calls` per step (step 0 included; see opro/problems/prompt.py). Each
run is a step function: after its cumulative scorer calls c_t, its best so far is best_so_far_t. Methods are
compared on a common grid (the union of every run's c_t): a run holds its last level after it stops, and has
no value before its step 0 is scored.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opro.analysis import Results
from opro.stats import format_mean_se, mean_se

CALLS = "scorer_calls"


def call_curves(steps: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run with scorer_calls recorded: (cumulative scorer calls, best so far) after each step."""
    if CALLS not in steps:
        return {}
    curves = {}
    for run, part in steps.sort_values(["run", "step"]).groupby("run", sort=True):
        calls = pd.to_numeric(part[CALLS], errors="coerce")
        if calls.isna().all():
            continue
        curves[str(run)] = (calls.fillna(0).cumsum().to_numpy(float), part["best_so_far"].to_numpy(float))
    return curves


def value_at(curve: tuple[np.ndarray, np.ndarray], x: float) -> float:
    """The run's best so far once it had spent `x` scorer calls (nan before its step 0 ended)."""
    calls, best = curve
    k = int(np.searchsorted(calls, x, side="right")) - 1
    return float(best[k]) if k >= 0 else float("nan")


def equal_budget(results: Results) -> list[dict[str, Any]]:
    """One row per (group, method) of prompt runs: the group's equal budget (the smallest total of scorer
    calls any of its runs reached), and the mean ± SE over runs of the best training accuracy at it."""
    curves = call_curves(results.steps)
    runs = results.runs[results.runs["run"].isin(list(curves))]
    rows = []
    for group, part in runs.groupby("group", sort=True):
        budget = min(curves[r][0][-1] for r in part["run"])
        for method, items in part.groupby("method", sort=True):
            values = [value_at(curves[r], budget) for r in items["run"]]
            mean, se, count = mean_se(values)
            rows.append({"group": group, "method": method, "runs": len(items), "budget_scorer_calls": budget,
                         "best_at_budget_mean": mean, "best_at_budget_se": se,
                         "best_at_budget": format_mean_se(values, 1), "total_scorer_calls": format_mean_se(
                             [curves[r][0][-1] for r in items["run"]], 0)})
    return rows


def budget_markdown(rows: list[dict[str, Any]]) -> str:
    """The equal-budget rows as markdown, one table per group."""
    lines = []
    for group in sorted({r["group"] for r in rows}):
        part = [r for r in rows if r["group"] == group]
        lines += [f"### {group}: best train accuracy at {part[0]['budget_scorer_calls']:.0f} scorer calls", "",
                  "| method | runs | best train accuracy % (mean ± SE) | scorer calls spent |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {r['method']} | {r['runs']} | {r['best_at_budget']} | {r['total_scorer_calls']} |" for r in part]
        lines.append("")
    return "\n".join(lines)


def plot_accuracy_vs_calls(results: Results, group: str, path: Path) -> Path:
    """`accuracy_vs_calls` of one group, written to `path` (PNG)."""
    from opro.plots import as_written

    as_written(accuracy_vs_calls(results, group)).savefig(Path(path), dpi=120)
    return Path(path)


def accuracy_vs_calls(results: Results, group: str | None = None) -> Any:
    """Best training accuracy against scorer calls for one group (default: the first with scorer calls): per
    method the mean over its runs (seeds) with a ± SE band, and the equal budget as a dotted line. A matplotlib
    Figure."""
    from matplotlib.figure import Figure

    curves = call_curves(results.steps)
    runs = results.runs[results.runs["run"].isin(list(curves))]
    group = group if group is not None else str(sorted(runs["group"])[0])
    runs = runs[runs["group"] == group]
    grid = np.unique(np.concatenate([curves[r][0] for r in runs["run"]]))
    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    for k, (method, items) in enumerate(runs.groupby("method", sort=True)):
        values = np.array([[value_at(curves[r], x) for x in grid] for r in items["run"]])
        count = np.sum(~np.isnan(values), axis=0)
        se = None
        with warnings.catch_warnings():  # no run, or one, at a grid point (before their step 0 ended)
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)  # nan where no run has a value yet: not drawn
            if len(values) > 1:
                se = np.nan_to_num(np.nanstd(values, axis=0, ddof=1) / np.sqrt(np.maximum(count, 1)))
        label = f"{method} ({len(values)} run{'s' if len(values) != 1 else ''}" + (", mean ± SE)" if se is not None
                                                                                   else ")")
        axes.plot(grid, mean, color=f"C{k % 10}", linewidth=2, drawstyle="steps-post", label=label)
        if se is not None:
            axes.fill_between(grid, mean - se, mean + se, color=f"C{k % 10}", alpha=0.2, step="post", linewidth=0)
    budget = min(curves[r][0][-1] for r in runs["run"])
    axes.axvline(budget, color="black", linestyle=":", linewidth=1, label=f"equal budget ({budget:.0f} calls)")
    axes.set_xlabel("scorer calls (training score, cumulative)")
    axes.set_ylabel("best training accuracy so far (%)")
    axes.set_title(group)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best", framealpha=0.85)
    return figure
