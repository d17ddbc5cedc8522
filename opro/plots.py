"""Figures of OPRO runs, drawn from `opro.analysis.Results` with matplotlib (Agg, no pyplot state).

Each function returns the `Figure` and, given `path`, also saves it (PNG or SVG by the suffix).
- `optimization_curve`: best so far against step (mean ± SE band over runs) over every proposal's score.
- `tsp_tours`: the best tour a run found beside the certified optimal tour.
- `linreg_landscape`: a run's (w, b) proposals, coloured by step, over the contours of the objective.
- `prompt_accuracy`: each instruction's training accuracy against step, the best instructions quoted.
- `method_comparison`: the optimality gap per method and setting, baselines included (bars ± SE).
- `validation_curve`: a prompt run's train / validation / test accuracy against step (paper §5.4).
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.text import Text

from opro.analysis import Results
from opro.errors import OproError

SUFFIXES = (".png", ".svg", ".pdf")
#: The only text drawn as mathtext: the project's own tick labels such as $10^{3}$ (linreg_landscape).
OWN_MATH = re.compile(r"\$10\^\{-?\d+\}\$")


def save(figure: Figure, path: Path | str) -> Path:
    """Write `figure` to `path` (.png at 150 dpi, .svg or .pdf), creating the folder."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise OproError(f"figure path must end in {', '.join(SUFFIXES)}: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    as_written(figure).savefig(path, dpi=150)
    return path


def as_written(figure: Figure) -> Figure:
    """`figure` with every text drawn as written: a `$` in a label drawn from data (an instruction that says
    "Put the answer in $\\boxed{}$", a method or task name) is not read as mathtext; only OWN_MATH is. Call it
    before saving a figure."""
    for text in figure.findobj(Text):
        if "$" in text.get_text() and not OWN_MATH.fullmatch(text.get_text()):
            text.set_parse_math(False)
    return figure


def score_axis(runs: pd.DataFrame, scores: pd.Series | None = None) -> tuple[str, float]:
    """(y label, factor) for the scores of `runs`: an accuracy in [0, 1] of a maximized task is shown in %."""
    from opro.problems import known_class

    label = known_class(str(runs["problem"].iloc[0])).SCORE_LABEL if len(runs) else "score"
    if label.endswith("(%)"):  # an accuracy recorded in [0, 1] is shown in %
        small = scores is None or scores.dropna().empty or scores.dropna().abs().max() <= 1.0
        return label, 100.0 if small else 1.0
    return label, 1.0


def per_seed_curves(curves: pd.DataFrame, steps: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Curves (one row per run) averaged over the runs that share a seed, so that the ± SE band is over seeds,
    the replicates (as in `opro compare`); and the number of seeds. A run without a seed counts as its own."""
    if "seed" not in steps:
        return curves, len(curves)
    seed_of = steps.groupby("run", observed=True)["seed"].first().reindex(curves.index)
    keys = [f"seed {s}" if pd.notna(s) else f"run {r}" for r, s in zip(curves.index, seed_of, strict=True)]
    by_seed = curves.groupby(keys, sort=False).mean()
    return by_seed, len(by_seed)


def optimization_curve(results: Results, value: str = "auto", hue: str = "method", scatter: bool = True,
                       baselines: dict[str, float] | None = None, title: str | None = None,
                       path: Path | str | None = None) -> Figure:
    """Best so far against step, with every scored proposal as a point (paper Figures 1 and 5).

    One line per `hue` value (a runs column): the mean over its runs with a ± SE band over seeds (runs that
    share a seed are averaged first, see `per_seed_curves`); a run that stopped early keeps its final best.
    `value` is "score", "gap" (optimality gap, %, comparable across instances) or "auto" (the gap when the
    runs span several instances with known optima, else the score, with the optimum drawn when there is one;
    regression runs always show the SSE). `baselines` adds labelled reference levels in y units.
    """
    runs, steps, cands = results.runs, results.steps, results.candidates
    if steps.empty:
        raise OproError("no steps to plot")
    optima = runs["optimum"].dropna()
    if value == "auto":  # regression SSEs of different noise draws are comparable as they are
        several = runs["instance"].nunique() > 1 and set(runs["problem"]) != {"linreg"}
        value = "gap" if several and len(optima) == len(runs) else "score"
    if value not in ("score", "gap"):
        raise OproError(f"value must be 'score', 'gap' or 'auto', not {value!r}")
    label, factor = score_axis(runs, cands["score"] if "score" in cands else None)
    if value == "gap":
        label, factor = "optimality gap (%)", 1.0
    line_column, point_column = ("gap_percent", "gap_percent") if value == "gap" else ("best_so_far", "score")
    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    rng = np.random.default_rng(0)
    for k, (name, part) in enumerate(steps.groupby(hue, observed=True, sort=True)):
        color = f"C{k % 10}"
        curves = part.pivot_table(index="run", columns="step", values=line_column, observed=True).ffill(axis=1)
        n_runs = len(curves)
        curves, seeds = per_seed_curves(curves, part)
        runs_text = f"{n_runs} run{'s' if n_runs != 1 else ''}" + (
            f" of {seeds} seed{'s' if seeds != 1 else ''}" if seeds < n_runs else "")
        mean = curves.mean(axis=0).to_numpy() * factor
        count = curves.notna().sum(axis=0).to_numpy()
        se = (curves.std(axis=0, ddof=1).to_numpy() * factor / np.sqrt(np.maximum(count, 1))) if len(curves) > 1 \
            else np.zeros_like(mean)
        x = np.append(curves.columns.to_numpy(), curves.columns[-1] + 0.5)  # the last step's level, drawn
        mean, se = np.append(mean, mean[-1]), np.append(se, se[-1])
        axes.plot(x, mean, color=color, linewidth=2, drawstyle="steps-post",
                  label=f"{name}: best so far" + (f", mean ± SE ({runs_text})" if len(curves) > 1 else ""))
        if len(curves) > 1:
            axes.fill_between(x, mean - se, mean + se, color=color, alpha=0.2, step="post", linewidth=0)
        if scatter and not cands.empty:
            points = cands[(cands[hue] == name) & cands["valid"] & cands[point_column].notna()]
            if len(points) > 20_000:
                points = points.sample(20_000, random_state=0)
            jitter = rng.uniform(-0.2, 0.2, len(points))
            axes.scatter(points["step"] + jitter, points[point_column] * factor, s=9, color=color, alpha=0.35,
                         linewidths=0, label=f"{name}: each proposal")
    if value == "score" and len(optima) == len(runs):
        instances = runs.drop_duplicates("instance")
        level = float(instances["optimum"].mean()) * factor
        note = "" if len(instances) == 1 else f", mean over {len(instances)} instances"
        axes.axhline(level, color="black", linestyle="--", linewidth=1, label=f"optimum ({level:.6g}{note})")
    for k, (name, level) in enumerate((baselines or {}).items()):
        if level is not None and math.isfinite(level):
            axes.axhline(level, color=f"C{(k + 4) % 10}", linestyle=":", linewidth=1.5, label=f"{name} ({level:.3g})")
    _scale_y(axes, value)
    axes.set_xlabel("optimization step (0 = initial solutions)")
    axes.set_ylabel(label)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title(title or _title(runs))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best", framealpha=0.85)
    return _done(figure, path)


def tsp_tours(results: Results, run: str | None = None, path: Path | str | None = None) -> Figure:
    """The best tour of `run` (default: the run with the smallest gap) beside the certified optimal tour."""
    from opro.problems import build_problem
    from opro.solvers import cached_optimal

    row, record = _one_run(results, run, "tsp")
    config = record["config"].get("config", record["config"])
    settings = {**config.get("problem_settings", {}), "optimum": False}
    problem = build_problem("tsp", settings, config["seed"])
    instance = record["summary"].get("instance") or record["config"].get("instance") or {}
    optimal = instance.get("optimal_solution")
    tour = problem.decode(optimal) if optimal else tuple(cached_optimal(problem.dist, problem.edge_weight_type).tour)
    best = problem.decode(str(row["best_solution"]))
    best_length, optimum = problem.score([best])[0], problem.score([tour])[0]
    figure = Figure(figsize=(10.0, 5.0), layout="constrained")
    left, right = figure.subplots(1, 2, sharex=True, sharey=True)
    gap = (best_length - optimum) / optimum * 100 if optimum else math.nan
    _draw_tour(left, problem.coords, best, "C3",
               f"best found (step {row['best_step']}): length {best_length:.1f}, gap {gap:.2f}%")
    _draw_tour(right, problem.coords, tour, "C2", f"optimal: length {optimum:.1f}")
    figure.suptitle(f"TSP {problem.instance_name} (n={problem.n}), {row['method']}, seed {row['seed']}")
    return _done(figure, path)


def linreg_landscape(results: Results, run: str | None = None, path: Path | str | None = None) -> Figure:
    """The (w, b) proposals of `run` (default: the best run), coloured by step, over the SSE contours."""
    from opro.problems import build_problem

    row, record = _one_run(results, run, "linreg")
    config = record["config"].get("config", record["config"])
    problem = build_problem("linreg", dict(config.get("problem_settings", {})), config["seed"])
    cands = results.candidates
    cands = cands[(cands["run"] == row["run"]) & cands["valid"]]
    pairs = np.array([problem.decode(s) for s in cands["solution"]], dtype=float).reshape(-1, 2)
    best_w, best_b = problem.optimum_pair
    w_all, b_all = np.append(pairs[:, 0], best_w), np.append(pairs[:, 1], best_b)
    w_span = max(3.0, (w_all.max() - w_all.min()) * 0.1)
    b_span = max(3.0, (b_all.max() - b_all.min()) * 0.1)
    w_grid = np.linspace(w_all.min() - w_span, w_all.max() + w_span, 160)
    b_grid = np.linspace(b_all.min() - b_span, b_all.max() + b_span, 160)
    ww, bb = np.meshgrid(w_grid, b_grid)
    residual = problem.y[None, None, :] - (ww[..., None] * problem.x[None, None, :] + bb[..., None])
    sse = np.einsum("ijk,ijk->ij", residual, residual)
    figure = Figure(figsize=(7.6, 5.6), layout="constrained")
    axes = figure.add_subplot()
    low, high = math.floor(math.log10(max(sse.min(), 1e-9)) * 4) / 4, math.ceil(math.log10(sse.max()) * 4) / 4
    levels = 10 ** np.arange(low, high + 0.125, 0.25)  # four levels a decade
    filled = axes.contourf(ww, bb, sse, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.6)
    axes.contour(ww, bb, sse, levels=levels, norm=LogNorm(), colors="white", linewidths=0.4)
    points = axes.scatter(pairs[:, 0], pairs[:, 1], c=cands["step"], cmap="viridis", s=28, edgecolors="black",
                          linewidths=0.3, zorder=3, label="proposals (colour: step)")
    axes.scatter([best_w], [best_b], marker="*", s=260, color="C3", edgecolors="black", zorder=4,
                 label=f"integer optimum w={best_w}, b={best_b}")
    axes.scatter([problem.w_true], [problem.b_true], marker="x", s=80, color="C1", zorder=4,
                 label=f"true line w={problem.w_true:g}, b={problem.b_true:g}")
    figure.colorbar(points, ax=axes, label="optimization step", pad=0.01)
    bar = figure.colorbar(filled, ax=axes, label="sum of squared errors (log scale)", location="bottom",
                          shrink=0.8, pad=0.01)
    bar.set_ticks(10.0 ** np.arange(math.ceil(low), math.floor(high) + 1), labels=[
        f"$10^{{{k}}}$" for k in range(math.ceil(low), math.floor(high) + 1)])
    axes.set_xlabel("w (slope)")
    axes.set_ylabel("b (intercept)")
    axes.set_title(f"linear regression, {row['method']}, seed {row['seed']}: {len(pairs)} valid proposals")
    axes.legend(fontsize=7, loc="upper right", framealpha=0.9)
    return _done(figure, path)


def prompt_accuracy(results: Results, run: str | None = None, top: int = 3, path: Path | str | None = None) -> Figure:
    """Each instruction's score (training accuracy) against step, the best so far, and the `top` best
    distinct instructions numbered on the plot and quoted beneath it. Works on any run whose candidates.csv
    holds the solution text and its score (higher is better)."""
    row, _ = _one_run(results, run, None)
    cands = results.candidates
    cands = cands[(cands["run"] == row["run"]) & cands["valid"] & cands["score"].notna()]
    steps = results.steps[results.steps["run"] == row["run"]]
    label, factor = score_axis(results.runs[results.runs["run"] == row["run"]], cands["score"])
    minimize = bool(row["minimize"])
    best = (cands.sort_values(["score", "step"], ascending=[minimize, True]).drop_duplicates("solution").head(top))
    lines = [textwrap.shorten(f"{k + 1}. [{r['score'] * factor:.1f}, step {r['step']}] {r['solution']}", 200,
                              placeholder=" ...") for k, (_, r) in enumerate(best.iterrows())]
    wrapped = "\n".join("\n".join(textwrap.wrap(line, 110, subsequent_indent="    ")) for line in lines)
    text_height = 0.22 * (wrapped.count("\n") + 2)
    figure = Figure(figsize=(8.0, 4.2 + text_height), layout="constrained")
    plot_axes, text_axes = figure.subplots(2, 1, height_ratios=[4.2, text_height])
    x = cands["step"] + np.random.default_rng(0).uniform(-0.15, 0.15, len(cands))
    plot_axes.scatter(x, cands["score"] * factor, s=16, alpha=0.5, color="C0", linewidths=0,
                      label="each instruction")
    plot_axes.plot(np.append(steps["step"], steps["step"].max() + 0.5),
                   np.append(steps["best_so_far"], steps["best_so_far"].iloc[-1]) * factor, drawstyle="steps-post",
                   color="C3", linewidth=2, label="best so far")
    for k, (_, r) in enumerate(best.iterrows()):
        plot_axes.annotate(str(k + 1), (x[r.name], r["score"] * factor), xytext=(-18, 4), textcoords="offset points",
                           fontsize=9, fontweight="bold", bbox={"boxstyle": "circle,pad=0.2", "fc": "white",
                                                                "ec": "C3"})
    plot_axes.scatter(x[best.index], best["score"] * factor, s=40, facecolors="none", edgecolors="C3")
    plot_axes.set_xlabel("optimization step (0 = initial instructions)")
    plot_axes.set_ylabel(label)
    plot_axes.xaxis.get_major_locator().set_params(integer=True)
    plot_axes.grid(alpha=0.3)
    plot_axes.legend(fontsize=8, loc="lower right")
    plot_axes.set_title(f"{row['task']}: {row['method']}, seed {row['seed']}")
    text_axes.axis("off")
    text_axes.text(0, 1, f"best instructions (score, step found):\n{wrapped}", va="top", ha="left", fontsize=8,
                   family="monospace", transform=text_axes.transAxes)
    return _done(figure, path)


METRICS = {
    "gap": ("gap_mean", "gap_se", "optimality gap (%), mean ± SE"),
    "steps": ("steps_to_optimum_mean", "steps_to_optimum_se", "steps to the optimum (solved runs), mean ± SE"),
    "unique": ("unique_mean", "unique_se", "unique solutions evaluated, mean ± SE"),
}


def method_comparison(table: pd.DataFrame, metric: str = "gap", title: str | None = None,
                      path: Path | str | None = None) -> Figure:
    """One panel per setting (`group`, e.g. "tsp n=10"), one bar per method: OPRO runs (solid) and baselines
    (hatched), mean ± SE with the mean written above each bar.

    `table` is `opro.compare.comparison_table(...)`; `metric` is "gap", "steps" or "unique".
    """
    if metric not in METRICS:
        raise OproError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    mean_column, se_column, label = METRICS[metric]
    groups = list(dict.fromkeys(table["group"]))
    if not groups:
        raise OproError("no rows to plot")
    columns = min(3, len(groups))
    rows_needed = math.ceil(len(groups) / columns)
    widest = max((table["group"] == g).sum() for g in groups)
    figure = Figure(figsize=(columns * max(3.2, 0.55 * widest + 1.4), 3.9 * rows_needed), layout="constrained")
    panels = np.atleast_1d(figure.subplots(rows_needed, columns, squeeze=False)).ravel()
    methods = dict.fromkeys(table.sort_values("kind", ascending=False)["method"])
    colors = {m: f"C{k % 10}" for k, m in enumerate(methods)}
    for axes, group in zip(panels, groups, strict=False):
        rows = table[table["group"] == group].sort_values(["kind", "method"], ascending=[False, True])
        means = rows[mean_column].astype(float).to_numpy()
        errors = np.nan_to_num(rows[se_column].astype(float).to_numpy())
        x = np.arange(len(rows))
        axes.bar(x, np.nan_to_num(means), 0.7, yerr=errors, capsize=3, color=[colors[m] for m in rows["method"]],
                 hatch=[None if k == "opro" else "//" for k in rows["kind"]], edgecolor="black", linewidth=0.5)
        for xi, mean, error in zip(x, means, errors, strict=True):
            axes.annotate("n/a" if not math.isfinite(mean) else f"{mean:.3g}", (xi, np.nan_to_num(mean) + error),
                          xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7)
        top = np.nanmax(np.append(np.nan_to_num(means) + errors, 0.0))
        axes.set_ylim(0, top * 1.18 if top > 0 else 1.0)
        names = [m + ("" if k == "opro" else "*") for m, k in zip(rows["method"], rows["kind"], strict=True)]
        axes.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        axes.set_title(f"{group} ({int(rows['runs'].max())} runs)", fontsize=10)
        axes.set_ylabel(label, fontsize=9)
        axes.grid(axis="y", alpha=0.3)
    for axes in panels[len(groups):]:
        axes.axis("off")
    figure.suptitle(title or "OPRO against baselines (* baseline, hatched)", fontsize=11)
    return _done(figure, path)


def validation_curve(run_dir: Path | str, title: str | None = None, path: Path | str | None = None) -> Figure:
    """Training, validation and test accuracy (%) against step, for a prompt run with `problem.eval_interval`
    (paper §5.4, Figure 9's overfitting study): the best training accuracy so far, the validation accuracy
    of that instruction at each evaluation step and, with `problem.eval_test`, its test accuracy; every
    instruction scored on validation is a point. Read from the run's steps.csv and instructions.csv."""
    run_dir = Path(run_dir)
    try:
        steps = pd.read_csv(run_dir / "steps.csv")
    except (OSError, ValueError) as error:
        raise OproError(f"no readable steps.csv in {run_dir}: {error}") from None
    if "validation_of_best" not in steps:
        raise OproError(f"{run_dir} has no validation accuracies (run with problem.eval_interval > 0)")
    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(steps["step"], steps["best_so_far"], drawstyle="steps-post", color="C0", linewidth=2,
              label="train (best so far)")
    at = steps[steps["validation_of_best"].notna()]
    axes.plot(at["step"], at["validation_of_best"], marker="o", color="C1", label="validation (of the best)")
    if "test_of_best" in steps and steps["test_of_best"].notna().any():
        tested = steps[steps["test_of_best"].notna()]
        axes.plot(tested["step"], tested["test_of_best"], marker="s", color="C2", label="test (of the best)")
    index = run_dir / "instructions.csv"
    if index.is_file():
        each = pd.read_csv(index, keep_default_na=False)
        each = each[pd.to_numeric(each.get("validation_score", pd.Series(dtype=str)), errors="coerce").notna()]
        if len(each):
            axes.scatter(each["step"], each["validation_score"].astype(float), s=14, alpha=0.4, color="C1",
                         linewidths=0, label="validation (each instruction)")
    axes.set_xlabel("optimization step (0 = initial instructions)")
    axes.set_ylabel("accuracy (%)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    axes.set_title(title or f"{run_dir.name}: train, validation and test accuracy")
    return _done(figure, path)


def write_live_curve(run_dir: Path | str, name: str = "curve.png") -> Path:
    """The optimization curve of a run being written, saved as `run_dir/name` (via a temporary file and a
    rename, so a viewer never sees half a PNG). Used by `opro run --plot-every N`."""
    from opro.analysis import load

    run_dir = Path(run_dir)
    target = run_dir / name
    tmp = run_dir / f".{name}.tmp.png"
    save(optimization_curve(load(run_dir), title=f"{run_dir.name} (live)"), tmp)
    tmp.replace(target)
    return target


def _one_run(results: Results, run: str | None, problem: str | None) -> tuple[pd.Series, dict[str, Any]]:
    runs = results.runs if problem is None else results.runs[results.runs["problem"] == problem]
    if runs.empty:
        raise OproError(f"no {problem or ''} runs to plot".replace("  ", " "))
    if run is None:
        key = runs["gap_percent"] if runs["gap_percent"].notna().any() else runs["best_score"]
        ascending = runs["minimize"].iloc[0] if runs["gap_percent"].isna().all() else True
        row = runs.loc[key.sort_values(ascending=bool(ascending), na_position="last").index[0]]
    else:
        match = runs[runs["run"] == run]
        if match.empty:
            raise OproError(f"no {problem or ''} run {run!r}")
        row = match.iloc[0]
    return row, results.records[row["run"]]


def _draw_tour(axes: Any, coords: np.ndarray, tour: tuple[int, ...], color: str, title: str) -> None:
    closed = np.array([coords[i] for i in (*tour, tour[0])])
    axes.plot(closed[:, 0], closed[:, 1], color=color, linewidth=1.6, zorder=1)
    axes.scatter(coords[:, 0], coords[:, 1], s=30, color="black", zorder=2)
    axes.scatter([coords[tour[0], 0]], [coords[tour[0], 1]], s=90, facecolors="none", edgecolors=color, zorder=3,
                 label=f"start (node {tour[0]})")
    if len(coords) <= 40:
        for i, (x, y) in enumerate(coords):
            axes.annotate(str(i), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    axes.set_aspect("equal", adjustable="box")
    axes.set_xlabel("x (coordinate units)")
    axes.set_ylabel("y (coordinate units)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")


def _scale_y(axes: Any, value: str) -> None:
    low, high = axes.dataLim.y0, axes.dataLim.y1
    if value == "score" and low > 0 and high / low > 100:
        axes.set_yscale("log")
    elif value == "gap" and high > 100 * max(low, 1.0):  # gaps over several decades (regression, early steps)
        axes.set_yscale("symlog", linthresh=1.0)


def _title(runs: pd.DataFrame) -> str:
    groups = sorted(runs["group"].astype(str).unique())
    return ", ".join(groups[:3]) + (" ..." if len(groups) > 3 else "")


def _done(figure: Figure, path: Path | str | None) -> Figure:
    if path is not None:
        save(figure, path)
    return figure
