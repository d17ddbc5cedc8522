"""`opro compare`: gather run directories and their baselines into one table per task, plus plots.

Runs are grouped by task and instance size (TSP: n; linear regression: w_true, b_true); within a group
each optimizer is a row, beside the baselines of the same instances. Columns: optimality gap (mean ± SE
over runs), runs solved to optimality, steps to the optimum (over the solved runs) and unique solutions
evaluated (the paper's Table 2 metric). Written as tidy CSV (`runs.csv`, `table.csv`), `table.md`, and a
PNG per group of best-so-far gap against step (mean and ± SE band) beside the baselines' levels.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.stats import format_mean_se, mean_se


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories (holding config.json and summary.json) at or below `paths`, sorted."""
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise OproError(f"no such directory: {path}")
        if (path / "summary.json").is_file():
            found.add(path)
        found.update(p.parent for p in path.rglob("summary.json") if (p.parent / "config.json").is_file())
    if not found:
        raise OproError(f"no finished runs (summary.json) under {', '.join(map(str, paths))}")
    return sorted(found)


def load_run(path: Path) -> dict[str, Any]:
    """One run as a flat record (plus its best-so-far curve under `curve`)."""
    import pandas as pd

    try:
        record = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text())
        steps = pd.read_csv(path / "steps.csv")
    except (OSError, ValueError, KeyError) as error:
        raise OproError(f"unreadable run directory {path}: {error}") from error
    config = record["config"]
    task = Path(config["task"]).name.removesuffix(".toml")
    instance = summary.get("instance", {})
    if summary["problem"] == "tsp":
        group = f"{task} n={instance.get('n')}"
    elif summary["problem"] == "linreg":
        group = f"{task} w={instance.get('w_true'):g} b={instance.get('b_true'):g}"
    else:
        group = task
    optimum = summary.get("optimum")
    best = steps["best_so_far"].astype(float)
    curve = [(_gap(v, optimum, summary["minimize"]) if optimum else v) for v in best]
    return {
        "run": str(path),
        "group": group,
        "task": task,
        "problem": summary["problem"],
        "method": f"opro {config['optimizer']['spec']}",
        "seed": config["seed"],
        "instance": instance.get("instance") or group,
        "best_score": summary["best_score"],
        "optimum": optimum,
        "gap_percent": summary.get("gap_percent"),
        "solved": bool(summary.get("solved")),
        "steps_to_optimum": summary.get("steps_to_optimum"),
        "steps_run": summary.get("steps_run"),
        "n_unique": summary.get("n_unique"),
        "valid_rate": summary.get("valid_rate"),
        "prompt_tokens": summary.get("prompt_tokens"),
        "completion_tokens": summary.get("completion_tokens"),
        "cost_usd": summary.get("cost_usd"),
        "curve": curve,
        "curve_is_gap": bool(optimum),
        "baseline_gaps": summary.get("baseline_gaps_percent") or {},
        "config": config,
    }


def baseline_records(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The baselines of one run's instance, as records shaped like runs (for the same table)."""
    out = []
    if run["problem"] == "linreg":
        from opro.baselines import linreg_baselines
        from opro.problems import build_problem

        config = run["config"]
        problem = build_problem("linreg", dict(config["problem_settings"]), config["seed"])
        loop = config["loop"]
        for result in linreg_baselines(problem, config["seed"], loop["steps"], loop["num_initial"],
                                       loop["candidates_per_step"]):
            out.append({
                "group": run["group"], "method": result["method"], "seed": run["seed"],
                "gap_percent": _gap(result["best_score"], run["optimum"], True), "solved": result["solved"],
                "steps_to_optimum": result["steps_to_optimum"], "n_unique": result["unique_pairs"],
            })
        return out
    for method, gap in run["baseline_gaps"].items():
        if method == "optimal":
            continue
        out.append({"group": run["group"], "method": method, "seed": run["seed"], "gap_percent": gap,
                    "solved": gap is not None and gap <= 1e-9, "steps_to_optimum": None, "n_unique": None})
    return out


def summarize_rows(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """One table row per (group, method)."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_key[(record["group"], record["method"])].append(record)
    rows = []
    for (group, method), items in sorted(by_key.items()):
        gap_mean, gap_se, _ = mean_se(r["gap_percent"] for r in items)
        solved = [r for r in items if r["solved"]]
        steps_mean, steps_se, _ = mean_se(r["steps_to_optimum"] for r in solved)
        unique_mean, unique_se, _ = mean_se(r["n_unique"] for r in items)
        rows.append({
            "group": group, "method": method, "kind": kind, "runs": len(items),
            "gap_mean": gap_mean, "gap_se": gap_se, "solved": len(solved),
            "steps_to_optimum_mean": steps_mean, "steps_to_optimum_se": steps_se,
            "unique_mean": unique_mean, "unique_se": unique_se,
            "valid_rate_mean": mean_se(r.get("valid_rate") for r in items)[0],
            "cost_usd": sum(r.get("cost_usd") or 0.0 for r in items) if kind == "opro" else None,
            "gap": format_mean_se((r["gap_percent"] for r in items), 2),
            "steps": format_mean_se((r["steps_to_optimum"] for r in solved), 1),
            "unique": format_mean_se((r["n_unique"] for r in items), 1),
        })
    return rows


def compare(paths: list[Path], out: Path, plot: bool = True) -> dict[str, Any]:
    """Write runs.csv, table.csv, table.md and one PNG per group to `out`; return what was written."""
    import pandas as pd

    runs = [load_run(p) for p in find_runs(paths)]
    baselines = [b for run in runs for b in baseline_records(run)]
    table = summarize_rows(runs, "opro") + summarize_rows(baselines, "baseline")
    table.sort(key=lambda r: (r["group"], r["kind"] != "opro", r["method"]))
    out.mkdir(parents=True, exist_ok=True)
    run_columns = [k for k in runs[0] if k not in ("curve", "baseline_gaps", "config")]
    pd.DataFrame([{k: r[k] for k in run_columns} for r in runs]).to_csv(out / "runs.csv", index=False)
    frame = pd.DataFrame(table)
    frame.drop(columns=["gap", "steps", "unique"]).to_csv(out / "table.csv", index=False)
    markdown = to_markdown(table)
    (out / "table.md").write_text(markdown)
    plots = [plot_group(group, [r for r in runs if r["group"] == group],
                        [r for r in table if r["group"] == group and r["kind"] == "baseline"], out)
             for group in sorted({r["group"] for r in runs})] if plot else []
    return {"runs": len(runs), "table": table, "markdown": markdown, "out": out, "plots": plots}


def to_markdown(table: list[dict[str, Any]]) -> str:
    lines = []
    for group in sorted({r["group"] for r in table}):
        lines += [f"### {group}", "", "| method | runs | gap % (mean ± SE) | solved | steps to optimum | unique |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in (r for r in table if r["group"] == group):
            lines.append(f"| {r['method']} | {r['runs']} | {r['gap']} | {r['solved']}/{r['runs']} | {r['steps']} "
                         f"| {r['unique']} |")
        lines.append("")
    return "\n".join(lines)


def plot_group(group: str, runs: list[dict[str, Any]], baselines: list[dict[str, Any]], out: Path) -> Path:
    """Best-so-far (gap %, or the score when no optimum is known) against step: mean line, ± SE band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    by_method: dict[str, list[list[float]]] = defaultdict(list)
    for run in runs:
        by_method[run["method"]].append(run["curve"])
    for method, curves in sorted(by_method.items()):
        length = max(len(c) for c in curves)
        filled = np.array([c + [c[-1]] * (length - len(c)) for c in curves], dtype=float)  # best stays best
        mean = filled.mean(axis=0)
        se = filled.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else np.zeros(length)
        steps = np.arange(length)
        axes.plot(steps, mean, label=f"{method} ({len(curves)} runs)")
        axes.fill_between(steps, mean - se, mean + se, alpha=0.25)
    if runs and runs[0]["curve_is_gap"]:
        for i, row in enumerate(baselines):
            if math.isfinite(row["gap_mean"]):
                axes.axhline(row["gap_mean"], linestyle="--", linewidth=1, color=f"C{(i + 3) % 10}",
                             label=f"{row['method']} ({row['gap_mean']:.2f}%)")
        axes.set_ylabel("optimality gap of best so far (%)")
    else:
        axes.set_ylabel("best score so far")
    axes.set_xlabel("step")
    axes.set_title(group)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path = out / f"best_so_far-{_slug(group)}.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _gap(value: float | None, optimum: float | None, minimize: bool) -> float | None:
    if value is None or not optimum:
        return None
    return (value - optimum) / abs(optimum) * 100 if minimize else (optimum - value) / abs(optimum) * 100


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
