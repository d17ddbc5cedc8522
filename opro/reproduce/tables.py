"""Our numbers beside the paper's: one tidy row per (table row, metric, paper column), with a verdict.

Ours are the mean ± std over the row's runs (seeds or instances), the paper's are as published (mean ± std
over its 5 runs where it gives one). The verdict reads:
- "within": the difference is at most the paper's reported std; where the paper gives a single number,
  at most our own std over seeds (so one seed is "within" only on an exact match);
- "better" / "worse": outside that, in the metric's direction (fewer steps, smaller gap, higher accuracy);
- "worse" also when none of our runs reached the optimum within steps the paper's runs typically needed
  (its mean + std of steps at most our step limit); "n/a" when one side has no value otherwise (e.g. both
  found no optimum, as the paper's "N/A (0)", or our reduced runs stopped before the paper's typical step).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from opro.reproduce import paper
from opro.reproduce.experiments import Plan

#: The columns of table.csv.
COLUMNS = ("experiment", "part", "row", "metric", "ours_mean", "ours_std", "ours_runs", "ours_successes",
           "paper_table", "paper_column", "paper_mean", "paper_spread", "paper_successes", "difference", "verdict")
#: Metrics where lower is better; the rest are accuracies (higher is better).
LOWER_IS_BETTER = {"steps", "unique", "gap"}
METRIC_NAMES = {"steps": "steps to the optimum", "unique": "unique (w, b) pairs explored", "gap": "optimality gap %",
                "baseline": "test accuracy %", "found": "test accuracy % of the best found",
                "train": "train accuracy % of the best found", "gain": "test accuracy gain over the baseline",
                "tasks_gain_over_5": "tasks with a gain over 5 points",
                "validation": "validation accuracy % of the best", "test": "test accuracy % of the best"}
#: Toolkit baselines of a TSP run (summary.json baseline_gaps_percent) and the paper column they match.
TSP_BASELINES = {"nearest_neighbor": "NN", "farthest_insertion": "FI", "two_opt": None, "local_search": None}


def verdict(ours: float | None, ours_std: float | None, published: float | None, spread: float | None,
            metric: str) -> str:
    """within / better / worse / n/a (see the module docstring)."""
    if _missing(ours) or _missing(published):
        return "n/a"
    tolerance = spread if not _missing(spread) else (0.0 if _missing(ours_std) else ours_std)
    if abs(ours - published) <= tolerance + 1e-9:
        return "within"
    lower = metric in LOWER_IS_BETTER
    return "better" if (ours < published) == lower else "worse"


def mean_std(values: Iterable[Any]) -> tuple[float | None, float | None, int]:
    """Mean and sample std (None for one value) of the values that are numbers; with their count."""
    numbers = [float(v) for v in values if not _missing(v)]
    if not numbers:
        return None, None, 0
    mean = sum(numbers) / len(numbers)
    std = math.sqrt(sum((x - mean) ** 2 for x in numbers) / (len(numbers) - 1)) if len(numbers) > 1 else None
    return mean, std, len(numbers)


def row(plan: Plan, part: str, label: str, metric: str, values: list[Any], runs: int,
        successes: int | None = None, published: pd.Series | None = None) -> dict[str, Any]:
    mean, std, _ = mean_std(values)
    out = {"experiment": plan.experiment, "part": part, "row": label, "metric": metric, "ours_mean": mean,
           "ours_std": std, "ours_runs": runs, "ours_successes": successes, "paper_table": None,
           "paper_column": None, "paper_mean": None, "paper_spread": None, "paper_successes": None,
           "difference": None, "verdict": ""}
    if published is not None:
        pm = None if _missing(published["mean"]) else float(published["mean"])
        spread = None if _missing(published["spread"]) else float(published["spread"])
        out.update(paper_table=published["paper_table"], paper_column=published["paper_column"], paper_mean=pm,
                   paper_spread=spread,
                   paper_successes=None if _missing(published["successes"]) else int(published["successes"]),
                   difference=None if mean is None or pm is None else mean - pm,
                   verdict=verdict(mean, std, pm, spread, metric))
    return out


def censored(out: dict[str, Any], steps_mean: float | None, steps_spread: float | None, limit: int) -> dict[str, Any]:
    """A steps/unique row where none of our runs reached the optimum: "worse" if the paper's runs typically
    reached it within our step limit (`steps_mean` + `steps_spread` <= `limit`), else left "n/a"."""
    if out["ours_successes"] == 0 and out["paper_mean"] is not None and steps_mean is not None and \
            steps_mean + (steps_spread or 0.0) <= limit:
        out["verdict"] = "worse"
    return out


def _step_limit(plan: Plan) -> int:
    return int(plan.spec.get("set", {}).get("loop.steps", 500))


def tabulate(plan: Plan, parent: Path) -> list[dict[str, Any]]:
    """The side-by-side rows of a finished (or partly finished) reproduction at `parent`."""
    cells = _cell_summaries(parent)
    return TABULATORS[plan.experiment](plan, cells, parent)


def _cell_summaries(parent: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(parent.glob("*/summary.json")):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, ValueError):  # an unreadable summary: the cell is left out of the table
            continue
    return out


def _runs(group: Any, cells: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [cells[c] for c in group.cells if c in cells]


def _table2(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    rows = []
    published = paper.published("table2")
    for group in plan.groups:
        runs = _runs(group, cells)
        solved = [r for r in runs if r.get("solved")]
        mine = published[published["setting"] == group.key]
        for metric, field in (("steps", "steps_to_optimum"), ("unique", "n_unique")):
            values = [r.get(field) for r in solved]
            for _, cell in mine[mine["metric"] == metric].iterrows():
                steps = mine[(mine["metric"] == "steps") & (mine["model"] == cell["model"])].iloc[0]
                rows.append(censored(row(plan, "", group.label, metric, values, len(runs), len(solved), cell),
                                     steps["mean"], steps["spread"], _step_limit(plan)))
    return rows


def _table3(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    rows = []
    published = paper.published("table3")
    for group in plan.groups:
        runs = _runs(group, cells)
        solved = [r for r in runs if r.get("solved")]
        mine = published[published["setting"] == group.key]
        for _, cell in mine[mine["metric"] == "gap"].iterrows():
            if cell["model"] in ("NN", "FI"):
                continue
            rows.append(row(plan, "OPRO", group.label, "gap", [r.get("gap_percent") for r in runs], len(runs),
                            len(solved), cell))
        for _, cell in mine[mine["metric"] == "steps"].iterrows():
            mean = None if _missing(cell["mean"]) else cell["mean"]
            rows.append(censored(row(plan, "OPRO", group.label, "steps", [r.get("steps_to_optimum") for r in solved],
                                     len(runs), len(solved), cell), mean, cell["spread"], _step_limit(plan)))
        for name, column in TSP_BASELINES.items():
            gaps = [(r.get("baseline_gaps_percent") or {}).get(name) for r in runs]
            match = mine[(mine["metric"] == "gap") & (mine["model"] == column)] if column else mine.iloc[:0]
            rows.append(row(plan, name, group.label, "gap", gaps, len(runs), None,
                            match.iloc[0] if len(match) else None))
    return rows


def _evaluations(parent: Path, cell: str) -> dict[str, float]:
    """instruction -> test accuracy, from the cell's eval/<cell>/eval.json ("run" holds the best found)."""
    try:
        record = json.loads((parent / "eval" / cell / "eval.json").read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for item in record.get("results", []):
        out["run" if item["source"] == "run" else item["instruction"]] = item["accuracy"]
    return out


def _scorer_column(plan: Plan) -> tuple[str, str]:
    """The paper's scorer whose prompt position matches ours: A_begin -> PaLM 2-L, else text-bison (Q_begin)."""
    position = str(plan.spec.get("set", {}).get("problem.position", "Q_begin"))
    return ("PaLM 2-L", "A_begin") if position == "A_begin" else ("text-bison", "Q_begin")


def _table4(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    rows = []
    published = paper.published("table4")
    scorer, position = _scorer_column(plan)
    group = plan.groups[0]
    runs = _runs(group, cells)
    evals = [_evaluations(parent, c) for c in group.cells if c in cells]
    for instruction in plan.evaluate["baselines"]:
        values = [e.get(instruction) for e in evals]
        label = f"baseline: {instruction!r}" if instruction else "baseline: (empty)"
        for _, cell in published[(published["metric"] == "baseline") & (published["text"] == instruction)].iterrows():
            mine = row(plan, "", label, "baseline", values, len(runs), None, cell)
            if cell["model"] != scorer:  # the other scorer's column: shown, not judged
                mine["verdict"] = ""
            rows.append(mine)
    found = published[published["metric"] == "found"]
    for model in ("PaLM 2-L", "text-bison"):
        best = found[found["model"] == model].sort_values("mean").iloc[-1]  # the paper's best optimizer
        mine = row(plan, "", "ours: best found", "found", [e.get("run") for e in evals], len(runs), None, best)
        if model != scorer:
            mine["verdict"] = ""
        rows.append(mine)
    rows.append(row(plan, "", "ours: best found", "train", [r.get("best_score") for r in runs], len(runs)))
    return rows


def _bbh(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    rows, gains = [], []
    baseline = plan.evaluate["baselines"][0]
    for group in plan.groups:
        evals = [_evaluations(parent, c) for c in group.cells if c in cells]
        base = [e.get(baseline) for e in evals]
        found = [e.get("run") for e in evals]
        gain = [f - b for f, b in zip(found, base, strict=True) if not (_missing(f) or _missing(b))]
        rows += [row(plan, group.label, group.label, "baseline", base, len(evals)),
                 row(plan, group.label, group.label, "found", found, len(evals)),
                 row(plan, group.label, group.label, "gain", gain, len(evals))]
        if gain:
            gains.append(sum(gain) / len(gain))
    reference = paper.published("bbh").iloc[0]
    over = sum(g > 5 for g in gains)
    summary = row(plan, "summary", f"{len(gains)} tasks", "tasks_gain_over_5", [over], len(gains), over, reference)
    share, paper_share = (over / len(gains) if gains else None), reference["successes"] / reference["runs"]
    summary.update(difference=None if share is None else share - paper_share,
                   verdict=verdict(share, None, paper_share, 0.0, "tasks_gain_over_5"))
    return rows + [summary]


def _ablations(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    rows = []
    for group in plan.groups:
        runs = _runs(group, cells)
        rows.append(row(plan, group.part, group.label, "train", [r.get("best_score") for r in runs], len(runs)))
    return rows


def _overfitting(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    rows = []
    for group in plan.groups:
        runs = _runs(group, cells)
        last: dict[str, list[Any]] = {"validation": [], "test": []}
        for cell in group.cells:
            steps = [s for s in read_rows(parent / cell / "steps.csv") if s.get("validation_of_best")]
            if steps:
                last["validation"].append(float(steps[-1]["validation_of_best"]))
                if steps[-1].get("test_of_best"):
                    last["test"].append(float(steps[-1]["test_of_best"]))
        rows += [row(plan, "", group.label, "train", [r.get("best_score") for r in runs], len(runs)),
                 row(plan, "", group.label, "validation", last["validation"], len(runs)),
                 row(plan, "", group.label, "test", last["test"], len(runs))]
    return rows


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows as dicts; none when it is missing or unreadable (a cell still being written)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _evoprompt(plan: Plan, cells: dict[str, dict[str, Any]], parent: Path) -> list[dict[str, Any]]:
    """Per task and method: the best training accuracy (%) within the task's budget of scorer calls, the
    test accuracy of that instruction, and its gain over the better starting instruction on test."""
    rows = []
    for group in plan.groups:
        runs = _runs(group, cells)
        evals = [_evaluations(parent, c) for c in group.cells if c in cells]
        test = [e.get("run") for e in evals]
        start = [max((e[t] for t in plan.evaluate["baselines"] if t in e), default=None) for e in evals]
        gain = [t - b for t, b in zip(test, start, strict=True) if not (_missing(t) or _missing(b))]
        rows += [row(plan, group.part, group.key, "train", [r.get("best_score") for r in runs], len(runs)),
                 row(plan, group.part, group.key, "found", test, len(runs)),
                 row(plan, group.part, group.key, "gain", gain, len(runs))]
    return rows


TABULATORS = {"table2": _table2, "table3": _table3, "table4": _table4, "bbh": _bbh, "ablations": _ablations,
              "overfitting": _overfitting,
               "evoprompt": _evoprompt}


def to_markdown(plan: Plan, rows: list[dict[str, Any]], models: dict[str, str]) -> str:
    """table.md: the title, the models on both sides, and one line per row."""
    lines = [f"# {plan.title}", ""]
    judged = any(r["verdict"] for r in rows)
    lines.append("Ours: " + ", ".join(f"{k} `{v}`" for k, v in models.items() if v) + ". " + PAPER_MODELS.get(
        plan.experiment, "") + " Ours are mean ± std over the runs of a row" + (
        "; the verdict compares with the paper's reported spread (see `opro.reproduce.tables`)." if judged else "."))
    if plan.note:
        lines += ["", plan.note]
    lines += ["", "| row | metric | ours | runs | paper column | paper | difference | verdict |",
              "| --- | --- | ---: | ---: | --- | ---: | ---: | --- |"]
    for r in rows:
        ours = _fmt(r["ours_mean"], r["ours_std"])
        if r["ours_successes"] is not None and r["metric"] in ("steps", "unique"):
            ours += f" ({r['ours_successes']})"
        published = _fmt(r["paper_mean"], r["paper_spread"])
        if r["paper_successes"] is not None and r["metric"] == "steps" and plan.experiment == "table3":
            published = ("N/A" if r["paper_mean"] is None else published) + f" ({r['paper_successes']})"
        part = f"{r['part']}: " if r["part"] and r["part"] != r["row"] else ""
        lines.append(f"| {part}{r['row']} | {METRIC_NAMES.get(r['metric'], r['metric'])} | {ours} | {r['ours_runs']} "
                     f"| {r['paper_column'] or ''} | {published} | {_fmt(r['difference'], None, signed=True)} "
                     f"| {r['verdict']} |")
    return "\n".join(lines) + "\n"


#: Whose numbers the paper columns are.
PAPER_MODELS = {
    "table2": "Paper: text-bison, gpt-3.5-turbo and gpt-4 as optimizers (5 seeds each).",
    "table3": "Paper: text-bison, gpt-3.5-turbo and gpt-4 as optimizers on 5 instances per n; NN and FI are "
              "its heuristics; our instances are other random draws of the same distribution.",
    "table4": "Paper: PaLM 2-L (A_begin) and text-bison (Q_begin) scorers; the verdict uses the scorer whose "
              "instruction position matches ours. 'Best found' is the paper's best optimizer for that scorer.",
    "bbh": "Paper: PaLM 2-L scorer with the PaLM 2-L-IT optimizer, 23 tasks (Figure 5).",
    "ablations": "The paper shows these as curves (Figures 7-10), so there is no number to set beside ours.",
    "overfitting": "The paper shows these as curves (§5.4), so there is no number to set beside ours.",
    "evoprompt": "The paper (gpt-3.5-turbo optimizer, text-bison scorer) shows curves only (§5.5): on GSM8K "
                 "both EvoPrompt variants fall below their starting point, on BBH sports_understanding "
                 "EvoPrompt-DE improves, less steadily than OPRO. Gains are over the better starting instruction.",
}


def _fmt(mean: float | None, std: float | None, signed: bool = False) -> str:
    if _missing(mean):
        return "n/a"
    text = f"{mean:+.1f}" if signed else f"{mean:.1f}"
    return text if _missing(std) else f"{text} ± {std:.1f}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
