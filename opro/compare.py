"""`opro compare`: gather run directories and their baselines into one table per task, plus plots.

Runs are grouped by task and instance (TSP: n of random instances, or the TSPLIB instance; linear regression:
w_true, b_true); within a group each optimizer is a row, beside the baselines of the same instances. Seeds are
the replicates: runs that share a seed are averaged into one value first (and `seed_repeats` names them, for a
warning), so two runs of one seed never count as two independent runs. Columns: optimality gap (mean ± SE
over seeds), runs solved to optimality, steps to the optimum (over the solved runs) and unique solutions
evaluated (the paper's Table 2 metric). Written as tidy CSV (`runs.csv`, `table.csv`), `table.md`, and a
PNG per group of best-so-far gap against step (mean and ± SE band) beside the baselines' levels. Prompt
runs (steps.csv scorer_calls) also get `budget.csv`, a markdown table of the best training accuracy at equal
scorer calls, and a PNG per group of accuracy against scorer calls (opro/budget.py).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from opro.analysis import Results, find_runs, load
from opro.budget import budget_markdown, equal_budget, plot_accuracy_vs_calls
from opro.config import checked_config
from opro.errors import OproError
from opro.scores import gap_percent
from opro.stats import format_mean_se, mean_se

__all__ = ["compare", "comparison_table", "find_runs", "run_records", "run_table"]

#: Display names of the baselines a problem reports (`Problem.baselines()`), in table order.
BASELINE_NAMES = {"nearest_neighbor": "nearest neighbour", "farthest_insertion": "farthest insertion",
                  "two_opt": "2-opt", "local_search": "Or-opt + 2-opt local search",
                  "least_squares_real": "least squares (real-valued w, b)", "optimal": "optimum"}


#: The columns of runs.csv.
RUN_COLUMNS = ("run", "group", "task", "problem", "method", "seed", "instance", "best_score", "optimum",
               "gap_percent", "solved", "steps_to_optimum", "steps_run", "n_unique", "valid_rate", "prompt_tokens",
               "completion_tokens", "cost_usd")


def run_records(results: Results) -> list[dict[str, Any]]:
    """One flat record per run (the runs.csv columns, plus its `config` and `baseline_gaps`)."""
    records = []
    for row in results.runs.to_dict("records"):
        record = results.records[row["run"]]
        records.append({
            **{k: _plain(row.get(k)) for k in RUN_COLUMNS},
            "solved": bool(row.get("solved")),
            "baseline_gaps": record["summary"].get("baseline_gaps_percent") or {},
            "config": record["config"].get("config", record["config"]),
        })
    return records


def baseline_records(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The baselines of one run's instance, as records shaped like runs (for the same table)."""
    out = []
    if run["problem"] == "linreg":
        from opro.baselines import linreg_baselines
        from opro.problems import build_problem

        try:
            config = checked_config(run["config"])
            problem = build_problem("linreg", dict(config.problem_settings), config.seed)
        except OproError:  # settings that do not build an instance (an edited config.json): no baselines
            return []
        loop = config.loop
        for result in linreg_baselines(problem, config.seed, loop.steps, loop.num_initial, loop.candidates_per_step):
            out.append({
                "group": run["group"], "method": result["method"], "seed": run["seed"],
                "gap_percent": gap_percent(result["best_score"], run["optimum"], True), "solved": result["solved"],
                "steps_to_optimum": result["steps_to_optimum"], "n_unique": result["unique_pairs"],
            })
        return out
    for method, gap in run["baseline_gaps"].items():
        if method == "optimal":
            continue
        out.append({"group": run["group"], "method": method, "seed": run["seed"], "gap_percent": gap,
                    "solved": gap is not None and gap <= 1e-9, "steps_to_optimum": None, "n_unique": None})
    return out


def per_seed(items: list[dict[str, Any]], key: str) -> list[float | None]:
    """One value of `key` per distinct seed: the mean over the runs that share a seed (a run without a seed
    counts as its own)."""
    by_seed: dict[Any, list[float]] = defaultdict(list)
    for i, item in enumerate(items):
        value = item.get(key)
        values = by_seed[item.get("seed") if item.get("seed") is not None else ("run", i)]
        if value is not None and math.isfinite(float(value)):
            values.append(float(value))
    return [sum(values) / len(values) if values else None for values in by_seed.values()]


def seed_repeats(records: list[dict[str, Any]]) -> list[str]:
    """One line per (group, method) in which some seed has more than one run."""
    by_key: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for record in records:
        if record.get("seed") is not None:
            by_key[(record["group"], record["method"])].append(record["seed"])
    lines = []
    for (group, method), seeds in sorted(by_key.items()):
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            lines.append(f"{group} / {method}: {len(seeds)} runs of {len(set(seeds))} distinct seed(s); seed(s) "
                         f"{', '.join(map(str, repeated))} repeat, so their runs are averaged as one replicate")
    return lines


def summarize_rows(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """One table row per (group, method): mean ± SE over distinct seeds (see `per_seed`)."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_key[(record["group"], record["method"])].append(record)
    rows = []
    for (group, method), items in sorted(by_key.items()):
        gaps, uniques = per_seed(items, "gap_percent"), per_seed(items, "n_unique")
        solved = [r for r in items if r["solved"]]
        steps = per_seed(solved, "steps_to_optimum")
        gap_mean, gap_se, _ = mean_se(gaps)
        steps_mean, steps_se, _ = mean_se(steps)
        unique_mean, unique_se, _ = mean_se(uniques)
        rows.append({
            "group": group, "method": method, "kind": kind, "runs": len(items), "seeds": len(gaps),
            "gap_mean": gap_mean, "gap_se": gap_se, "solved": len(solved),
            "steps_to_optimum_mean": steps_mean, "steps_to_optimum_se": steps_se,
            "unique_mean": unique_mean, "unique_se": unique_se,
            "valid_rate_mean": mean_se(per_seed(items, "valid_rate"))[0],
            "cost_usd": sum(r.get("cost_usd") or 0.0 for r in items) if kind == "opro" else None,
            "gap": format_mean_se(gaps, 2),
            "steps": format_mean_se(steps, 1),
            "unique": format_mean_se(uniques, 1),
        })
    return rows


def comparison_table(results: Results) -> pd.DataFrame:
    """One row per (group, method): the OPRO runs of `results` beside the baselines of their instances.

    Columns: group, method, kind ("opro" or "baseline"), runs, seeds (distinct), gap_mean, gap_se, solved,
    steps_to_optimum_mean/_se (solved runs), unique_mean/_se, valid_rate_mean, cost_usd, and the formatted
    cells gap, steps and unique.
    """
    runs = run_records(results)
    baselines = [b for run in runs for b in baseline_records(run)]
    table = summarize_rows(runs, "opro") + summarize_rows(baselines, "baseline")
    table.sort(key=lambda r: (r["group"], r["kind"] != "opro", r["method"]))
    return pd.DataFrame(table)


def compare(paths: list[Path], out: Path, plot: bool = True,
            on_skip: Callable[[Path, str], None] | None = None) -> dict[str, Any]:
    """Write runs.csv, table.csv, table.md and one PNG per group to `out`; return what was written.
    Unreadable runs are left out and reported to `on_skip` (see `opro.analysis.load`)."""
    results = load(paths, candidates=False, finished=True, on_skip=on_skip)
    frame = comparison_table(results)
    table = frame.to_dict("records")
    repeats = seed_repeats(run_records(results))
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{k: r[k] for k in RUN_COLUMNS} for r in run_records(results)]).to_csv(out / "runs.csv", index=False)
    frame.drop(columns=["gap", "steps", "unique"]).to_csv(out / "table.csv", index=False)
    markdown = to_markdown(table) + "".join(f"\nNote: {line}.\n" for line in repeats)
    budget = equal_budget(results)  # prompt runs: best train accuracy at equal scorer calls
    if budget:
        pd.DataFrame(budget).to_csv(out / "budget.csv", index=False)
        markdown += "\n" + budget_markdown(budget)
    (out / "table.md").write_text(markdown)
    plots = [plot_group(results, group, frame, out) for group in sorted(set(results.runs["group"]))] if plot else []
    if plot:
        plots += [plot_accuracy_vs_calls(results, group, out / f"accuracy_vs_scorer_calls-{_slug(group)}.png")
                  for group in sorted({r["group"] for r in budget})]
    return {"runs": len(results.runs), "table": table, "markdown": markdown, "out": out, "plots": plots,
            "budget": budget, "seed_repeats": repeats}


def run_table(summary: dict[str, Any]) -> str:
    """One run against its instance's baselines, as `opro run` prints it at the end: the best found, the
    best of the initial solutions, and each baseline, with the gap to the optimum in % (paper §3: Table 3).
    Empty when the problem has no baselines (prompt optimization compares instructions with `opro eval`)."""
    baselines = summary.get("baselines") or {}
    if not baselines:
        return ""
    optimum, minimize = summary.get("optimum"), summary.get("minimize", True)
    rows = [("OPRO best found", summary["best_score"]), ("initial best (step 0)", summary.get("initial_best"))]
    rows += [(BASELINE_NAMES.get(k, k), baselines[k]) for k in BASELINE_NAMES if k in baselines]
    rows += [(k, v) for k, v in baselines.items() if k not in BASELINE_NAMES]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':{width}}  {'score':>12}  {'gap':>8}"]
    for name, value in rows:
        if value is None:
            continue
        gap = gap_percent(value, optimum, minimize)
        lines.append(f"{name:{width}}  {value:>12.6g}  {'n/a' if gap is None else f'{gap:.2f}%':>8}")
    return "\n".join(lines)


def to_markdown(table: list[dict[str, Any]]) -> str:
    lines = []
    for group in sorted({r["group"] for r in table}):
        lines += [f"### {group}", "", "| method | runs | gap % (mean ± SE) | solved | steps to optimum | unique |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in (r for r in table if r["group"] == group):
            seeds = r.get("seeds", r["runs"])
            runs = r["runs"] if seeds == r["runs"] else f"{r['runs']} ({seeds} seed{'s' * (seeds != 1)})"
            lines.append(f"| {r['method']} | {runs} | {r['gap']} | {r['solved']}/{r['runs']} | {r['steps']} "
                         f"| {r['unique']} |")
        lines.append("")
    return "\n".join(lines)


def plot_group(results: Results, group: str, table: pd.DataFrame, out: Path) -> Path:
    """Best so far of one group's runs against step (the optimality gap when the optimum is known): the
    mean over runs of each method with a ± SE band, beside the baselines' mean levels."""
    from opro.plots import optimization_curve

    subset = results.subset(results.runs.loc[results.runs["group"] == group, "run"])
    with_gap = subset.runs["optimum"].notna().all()
    levels = table[(table["group"] == group) & (table["kind"] == "baseline")]
    baselines = {r["method"]: r["gap_mean"] for r in levels.to_dict("records")} if with_gap else None
    path = out / f"best_so_far-{_slug(group)}.png"
    optimization_curve(subset, value="gap" if with_gap else "score", scatter=False, baselines=baselines,
                       title=group, path=path)
    return path


def _plain(value: Any) -> Any:
    """A frame cell as a plain Python value (None for a missing one)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
