"""Run a reproduction: the plan's sweep, the test-split evaluations, then the table, figures and record.

The folder (default `results/reproduce/<experiment>`, with `-scale<F>` for a reduced run, so the two never
mix) holds one run directory per cell (an `opro sweep` parent: sweep.json), `eval/<cell>/` for prompt
experiments, and `table.csv`, `table.md`, the figures and `reproduce.json` (the plan, the models, the
settings, versions and git revision). Running the same command again resumes: finished cells and
evaluations are kept, half-finished cells continue from their last complete step.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.reproduce.experiments import Group, Plan
from opro.results import environment, prepare_output, write_json_atomic

RECORD = "reproduce.json"


def default_folder(plan: Plan, results_root: str = "results") -> Path:
    suffix = f"-scale{plan.scale:g}" if plan.scale < 1 else ("-reduced" if plan.reduced else "")
    return Path(results_root) / "reproduce" / f"{plan.experiment}{suffix}"


def to_sweep(plan: Plan, parent: Path) -> Any:
    """The plan's cells as an `opro.sweep.Sweep` under `parent` (each cell's config built, so checked)."""
    from opro.sweep import Sweep, plan_cells

    return Sweep(plan.experiment, parent.resolve(), plan_cells(plan.spec, f"reproduce {plan.experiment}"), {},
                 plan.spec)


def models(sweep: Any) -> dict[str, str]:
    """The optimizer and scorer specs of the first cell (every cell shares them)."""
    from opro.config import build_config

    cell = sweep.cells[0]
    config = build_config(cell.task, cell.overrides)
    out = {"optimizer": config.optimizer.spec}
    if config.scorer is not None or cell.task not in ("tsp-paper", "linreg-paper"):
        out["scorer"] = (config.scorer or config.optimizer).spec
    return out


def reproduce(plan: Plan, folder: Path, backend: str = "local", workers: int | None = None,
              address: str | None = None, on_event: Callable[[str, dict[str, Any]], None] | None = None,
              on_note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the reproduction into `folder`; returns the record written to reproduce.json."""
    from opro.sweep import run_sweep

    note = on_note or (lambda text: None)
    folder = prepare_output(folder, "--out", folder=True, create=False)
    sweep = to_sweep(plan, folder)
    record = _open_record(plan, folder, models(sweep))
    counts = run_sweep(sweep, backend, workers, address, True, on_event)  # a rerun retries failed runs
    if plan.evaluate:
        evaluate(plan, folder, note)
    record.update(finish(plan, folder), cells=counts, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json_atomic(folder / RECORD, record)
    return record


def _open_record(plan: Plan, folder: Path, chosen: dict[str, str]) -> dict[str, Any]:
    """reproduce.json, new or reopened; a folder of another plan (other models or settings) is refused."""
    plan_record = plan_to_dict(plan)
    path = folder / RECORD
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise OproError(f"unreadable {path}: {error}") from None
        if old.get("plan", {}).get("spec") != plan_record["spec"]:
            raise OproError(f"{folder} holds a {old.get('plan', {}).get('experiment', 'other')} reproduction with "
                            "other settings or models; give this one another --out")
        record = {**old, "plan": plan_record, "models": chosen}
    else:
        folder.mkdir(parents=True, exist_ok=True)
        record = {"experiment": plan.experiment, "title": plan.title, "plan": plan_record, "models": chosen,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    record.update(environment())
    write_json_atomic(path, record)
    return record


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return dataclasses.asdict(plan)


def plan_from_dict(data: dict[str, Any]) -> Plan:
    return Plan(**{**data, "groups": [Group(**g) for g in data["groups"]]})


def evaluate(plan: Plan, folder: Path, note: Callable[[str], None]) -> None:
    """Score each finished cell's best instruction and the baselines on the test split, into eval/<cell>/
    (a cell with eval.json is skipped, so a rerun resumes). --scale shrinks the test split too."""
    from opro.prompting.evaluate import evaluate_instructions
    from opro.readback import run_best
    from opro.runner import build_run_problem

    for group in plan.groups:
        for cell in group.cells:
            out = folder / "eval" / cell
            if (out / "eval.json").is_file() or not (folder / cell / "summary.json").is_file():
                continue
            config, best = run_best(folder / cell)
            problem = build_run_problem(config)
            try:
                limit = plan.evaluate["limit"]
                if limit is None and plan.reduced:
                    from opro.reproduce.experiments import scaled

                    limit = scaled(len(problem.examples("test")), plan.scale, floor=10)
                note(f"evaluating {cell} on {limit or 'all'} test questions")
                chosen = [("run", best)] + [("baseline", text) for text in plan.evaluate["baselines"]]
                evaluate_instructions(problem, chosen, plan.evaluate["split"], limit, out)
            finally:
                problem.close()


def finish(plan: Plan, folder: Path) -> dict[str, Any]:
    """table.csv, table.md and the figures from what is on disk; returns their names for the record."""
    from opro.reproduce.figures import write_figures
    from opro.reproduce.tables import COLUMNS, tabulate, to_markdown

    rows = tabulate(plan, folder)
    with open(folder / "table.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    chosen = _stored_models(folder)
    (folder / "table.md").write_text(to_markdown(plan, rows, chosen), encoding="utf-8")
    figures = write_figures(plan, rows, folder, chosen)
    verdicts: dict[str, int] = {}
    for row in rows:
        if row["verdict"]:
            verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
    return {"table": "table.md", "figures": [p.name for p in figures], "verdicts": verdicts}


def _stored_models(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / RECORD).read_text()).get("models", {})
    except (OSError, ValueError):
        return {}


def read_plan(folder: Path) -> Plan | None:
    """The plan of a reproduction folder (None when `folder` is not one)."""
    try:
        return plan_from_dict(json.loads((folder / RECORD).read_text())["plan"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
