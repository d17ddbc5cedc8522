"""The figures of a reproduction, beside the paper's values where it has numbers.

- table2 / table3: ours (mean ± std over a row's runs) beside each published column, per row;
  table3 also gets the best-so-far gap against step of every n (`opro.plots.optimization_curve`).
- table4 / bbh: test accuracies (bbh: the gain over the baseline per task, with the paper's 5-point line).
- ablations (§5.3): accuracy against step per setting, mean ± SE over seeds, one panel per ablation, as
  the paper plots them: each step's mean accuracy over its new instructions (per_step: against the
  instructions evaluated, the budget the ablation holds fixed).
- overfitting (§5.4): train, validation and test accuracy of the best instruction against step.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from opro.plots import save
from opro.reproduce.experiments import Plan
from opro.reproduce.tables import METRIC_NAMES, read_rows
from opro.results import typed_row


def write_figures(plan: Plan, rows: list[dict[str, Any]], parent: Path, models: dict[str, str] | None = None
                  ) -> list[Path]:
    """Draw the experiment's figures into `parent`; returns their paths (none when nothing finished).
    `models` (optimizer, scorer specs) name our series."""
    ours = "ours: " + ", ".join(models.values()) if models else "ours"
    drawn = []
    for name, draw in DRAWERS.get(plan.experiment, ()):
        figure = draw(plan, rows, parent, ours)
        for suffix, one in (figure.items() if isinstance(figure, dict) else [("", figure)]):
            if one is not None:
                drawn.append(save(one, parent / f"{name}{suffix}.png"))
    return drawn


def _side_by_side(plan: Plan, rows: list[dict[str, Any]], metrics: tuple[str, ...], ours_label: str
                  ) -> Figure | None:
    """Per metric a panel: x = the table's rows, one marker series for ours and one per paper column."""
    chosen = [r for r in rows if r["metric"] in metrics]
    if not chosen:
        return None
    figure = Figure(figsize=(6.2 * len(metrics), 4.2), layout="constrained")
    for k, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), k + 1)
        mine = [r for r in chosen if r["metric"] == metric]
        labels = list(dict.fromkeys(r["row"] for r in mine))
        series: dict[str, dict[str, tuple[float | None, float | None]]] = {}
        for r in mine:
            ours = ours_label if r["part"] in ("", "OPRO") else "toolkit " + r["part"].replace("_", " ")
            series.setdefault(ours, {})[r["row"]] = (r["ours_mean"], r["ours_std"])
            if r["paper_column"]:
                series.setdefault("paper: " + r["paper_column"].split(", ")[-1], {})[r["row"]] = (
                    r["paper_mean"], r["paper_spread"])
        width = 0.8 / max(len(series), 1)
        for j, (name, points) in enumerate(series.items()):
            x = [i + (j - (len(series) - 1) / 2) * width for i, label in enumerate(labels) if label in points]
            y = [points[label][0] for label in labels if label in points]
            err = [points[label][1] or 0 for label in labels if label in points]
            keep = [i for i, v in enumerate(y) if v is not None and math.isfinite(v)]
            axes.errorbar([x[i] for i in keep], [y[i] for i in keep], yerr=[err[i] for i in keep], fmt="o",
                          capsize=3, markersize=5, label=name, color=f"C{j % 10}")
        missed = sorted({labels.index(r["row"]) for r in mine if r["metric"] == "steps" and r["part"] in ("", "OPRO")
                         and r["ours_successes"] == 0})
        if missed:  # our runs that found no optimum: a cross at the step limit
            limit = int(plan.spec.get("set", {}).get("loop.steps", 0))
            axes.scatter(missed, [limit] * len(missed), marker="x", color="C0", s=40,
                         label=f"{ours_label}: no optimum within {limit} steps")
        axes.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
        axes.set_ylabel(METRIC_NAMES.get(metric, metric))
        if metric == "gap":
            axes.set_yscale("symlog", linthresh=1.0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(plan.title, fontsize=10)
    return figure


def _table2(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> Figure | None:
    return _side_by_side(plan, rows, ("steps", "unique"), ours)


def _table3(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> Figure | None:
    return _side_by_side(plan, rows, ("gap", "steps"), ours)


def _table3_curves(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> Figure | None:
    from opro.analysis import load
    from opro.errors import OproError
    from opro.plots import optimization_curve

    try:
        results = load(parent, candidates=False, on_skip=lambda path, reason: None)
    except OproError:
        return None
    return optimization_curve(results, value="gap", hue="group", scatter=False, title=plan.title)


def _accuracies(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> Figure | None:
    chosen = [r for r in rows if r["metric"] in ("baseline", "found", "gain") and r["ours_mean"] is not None]
    if not chosen:
        return None
    figure = Figure(figsize=(max(6.0, 0.9 * len(chosen)), 4.4), layout="constrained")
    axes = figure.add_subplot()
    labels = [f"{r['row']}\n{r['metric']}" if plan.experiment == "bbh" else r["row"] for r in chosen]
    x = np.arange(len(chosen))
    axes.bar(x - 0.2, [r["ours_mean"] for r in chosen], 0.4, yerr=[r["ours_std"] or 0 for r in chosen],
             capsize=3, label=ours, color="C0")
    paper = [(i, r["paper_mean"]) for i, r in enumerate(chosen) if r["paper_mean"] is not None and r["verdict"]]
    if paper:
        axes.bar([i + 0.2 for i, _ in paper], [v for _, v in paper], 0.4, label="paper (matching scorer)",
                 color="C1")
    if plan.experiment == "bbh":
        axes.axhline(5.0, color="C3", linestyle="--", linewidth=1, label="paper: > 5 points on 19 of 23 tasks")
    axes.set_xticks(x, [textwrap_label(label) for label in labels], fontsize=7)
    axes.set_ylabel("test accuracy (%) / gain (points)")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize=8)
    axes.set_title(plan.title, fontsize=10)
    return figure


def textwrap_label(text: str, width: int = 18) -> str:
    return "\n".join(textwrap.wrap(text, width)[:4])


def _band(axes: Any, curves: list[dict[float, float]], label: str, color: str) -> None:
    """Mean ± SE over runs of curves given as {x: y}."""
    xs = sorted({x for curve in curves for x in curve})
    if not xs:
        return
    values = [[c[x] for c in curves if x in c] for x in xs]
    mean = np.array([np.mean(v) for v in values])
    se = np.array([np.std(v, ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0 for v in values])
    axes.plot(xs, mean, marker="o", markersize=3, color=color, label=f"{label} ({len(curves)} run(s))")
    axes.fill_between(xs, mean - se, mean + se, color=color, alpha=0.2, linewidth=0)


def _step_means(path: Path) -> dict[float, float]:
    """Per step, the mean training accuracy (%, as candidates.csv scores it) of the step's newly scored
    instructions (x: the step)."""
    by_step: dict[int, list[float]] = {}
    for candidate in map(typed_row, read_rows(path / "candidates.csv")):
        if candidate.get("valid") and not candidate.get("duplicate") and candidate.get("score"):
            by_step.setdefault(int(candidate["step"]), []).append(float(candidate["score"]))
    return {float(step): float(np.mean(vals)) for step, vals in sorted(by_step.items())}


def _ablations(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> Figure | None:
    parts = list(dict.fromkeys(g.part for g in plan.groups))
    if not any((parent / c / "candidates.csv").is_file() for g in plan.groups for c in g.cells):
        return None
    columns = min(3, len(parts))
    figure = Figure(figsize=(5.0 * columns, 3.8 * math.ceil(len(parts) / columns)), layout="constrained")
    for k, part in enumerate(parts):
        axes = figure.add_subplot(math.ceil(len(parts) / columns), columns, k + 1)
        for j, group in enumerate(g for g in plan.groups if g.part == part):
            curves = []
            for cell in group.cells:
                curve = _step_means(parent / cell)
                if part == "per_step":  # against the instructions evaluated so far
                    per = _cell_setting(plan, cell, "loop.candidates_per_step", 8)
                    curve = {x * per: y for x, y in curve.items()}
                if curve:
                    curves.append(curve)
            _band(axes, curves, group.key, f"C{j % 10}")
        axes.set_title(part.replace("_", " "), fontsize=9)
        axes.set_xlabel("instructions evaluated" if part == "per_step" else "optimization step")
        axes.set_ylabel("training accuracy (%)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(plan.title, fontsize=10)
    return figure


def _cell_setting(plan: Plan, cell_id: str, key: str, default: Any) -> Any:
    for cell in plan.spec.get("cells", []):
        from opro.sweep import cell_name

        if cell_name(cell) == cell_id:
            return cell.get(key, plan.spec.get("set", {}).get(key, default))
    return default


def _overfitting(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> Figure | None:
    cells = [c for g in plan.groups for c in g.cells if (parent / c / "steps.csv").is_file()]
    if not cells:
        return None
    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    for j, (column, label) in enumerate((("best_so_far", "train (best so far)"),
                                         ("validation_of_best", "validation (of the best)"),
                                         ("test_of_best", "test (of the best)"))):
        curves = []
        for cell in cells:
            steps = read_rows(parent / cell / "steps.csv")
            curve = {float(s["step"]): float(s[column]) for s in steps if s.get(column)}
            if curve:
                curves.append(curve)
        _band(axes, curves, label, f"C{j}")
    axes.set_xlabel("optimization step")
    axes.set_ylabel("accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(plan.title, fontsize=10)
    return figure


def _evoprompt(plan: Plan, rows: list[dict[str, Any]], parent: Path, ours: str) -> dict[str, Figure]:
    """Best training accuracy against scorer calls, one figure per task (opro.budget's view)."""
    from opro.analysis import load
    from opro.budget import accuracy_vs_calls, call_curves
    from opro.errors import OproError

    try:
        results = load(parent, candidates=False, on_skip=lambda path, reason: None)
    except OproError:
        return {}
    groups = sorted(set(results.runs[results.runs["run"].isin(list(call_curves(results.steps)))]["group"]))
    return {"-" + "".join(c if c.isalnum() else "_" for c in str(g)): accuracy_vs_calls(results, g) for g in groups}


DRAWERS = {
    "table2": (("table2", _table2),),
    "table3": (("table3", _table3), ("best_so_far", _table3_curves)),
    "table4": (("accuracy", _accuracies),),
    "bbh": (("gain", _accuracies),),
    "ablations": (("ablations", _ablations),),
    "overfitting": (("overfitting", _overfitting),),
    "evoprompt": (("accuracy", _accuracies), ("accuracy_vs_scorer_calls", _evoprompt)),
}
