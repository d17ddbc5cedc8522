"""`opro baselines`, `opro compare` and `opro report`: baseline tables and the analysis of run directories.
Parsing only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from opro.cli_shared import option_given, warn_skipped
from opro.errors import OproError


@click.command()
@click.option("--task", default="tsp", show_default=True, help="Preset name or .toml path (a problem with baselines).")
@click.option("--instance", type=click.Path(dir_okay=False),
              help="TSP: a TSPLIB .tsp file, or a shipped one by name (burma14).")
@click.option("--n", "sizes", type=int, multiple=True, help="TSP: random instance sizes, e.g. --n 10 15 20 50.")
@click.option("--instances", type=int, default=None, help="TSP: random instances per size (seeds seed..seed+K-1).")
@click.option("--seed", type=int, default=None, help="First instance seed (TSP) or the run seed (linreg).")
@click.option("--seeds", "seeds_text", metavar="LIST", help="Linreg: seeds to average over (e.g. 0-4).")
@click.option("--steps", type=int, help="Linreg: the OPRO run's steps, which set the equal evaluation budget.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Any preset setting.")
@click.option("--time-limit", type=float, default=600.0, show_default=True,
              help="TSP: seconds per method and instance; a heuristic stops there with its best tour, an "
              "unfinished proof of the optimum is reported as not certified.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the CSV/markdown tables.")
def baselines(task: str, instance: str | None, sizes: tuple[int, ...], instances: int | None, seed: int | None,
              seeds_text: str | None, steps: int | None, settings: tuple[str, ...], time_limit: float,
              as_json: bool, out: str | None) -> None:
    """Baselines of a task: TSP heuristics and the certified optimum; regression searches at equal budget."""
    from opro import baselines as reports
    from opro.config import Range, build_config, parse_override
    from opro.results import prepare_output

    overrides = dict(parse_override(item) for item in settings)
    if seed is not None:
        overrides["seed"] = seed
    if steps is not None:
        overrides["loop.steps"] = steps
    if instance is not None:
        from opro.tsplib import resolve_instance

        overrides["problem.instance"] = str(resolve_instance(instance))
    config = build_config(task, overrides)
    Range(0, 365 * 86_400, above=True).check("--time-limit", time_limit)  # nan fails every comparison
    if out:
        prepare_output(Path(out), "--out", folder=True, create=False)
    if config.problem == "tsp":
        linreg_only = [o for o, v in (("--seeds", seeds_text), ("--steps", steps is not None)) if v]
        if linreg_only:
            raise OproError(f"{linreg_only[0]} sets the linear-regression searches; the TSP baselines take --n, "
                            "--instances, --instance, --seed and --time-limit")
        if sizes or instances is not None:
            if instance is not None:
                raise OproError("--n/--instances make random instances; leave out --instance")
            from opro.problems import check_problem_settings
            from opro.settings import MAX_REPEATS

            sizes = sizes or (int(config.problem_settings.get("n", 10)),)
            count = 1 if instances is None else instances
            Range(1, MAX_REPEATS).check("--instances", count)
            for size in sizes:
                check_problem_settings("tsp", {"n": size, "seed": config.seed + count - 1})
            report = reports.tsp_table(list(sizes), count, config.seed,
                                       int(config.problem_settings.get("coord_range", 100)), time_limit,
                                       Path(out) if out else None)
        else:
            from opro.problems import build_problem

            problem = build_problem("tsp", {**config.problem_settings, "optimum": False}, config.seed)
            report = reports.tsp_baselines(problem, time_limit=time_limit)
            if out:
                reports.write_tsp_baselines(report, Path(out))
                report["_text"] = f"{reports.tsp_text(report)}\n\ntables: {out}"
    elif config.problem == "linreg":
        tsp_only = [o for o, v in (("--n", sizes), ("--instances", instances is not None), ("--instance", instance),
                                   ("--time-limit", option_given("time_limit"))) if v]
        if tsp_only:
            raise OproError(f"{tsp_only[0]} is a TSP option; the linreg baselines take --seed, --seeds, --steps "
                            "and --set")
        seeds = _seed_list(seeds_text, config.seed)
        report = reports.linreg_table(config, seeds, Path(out) if out else None)
    else:  # any other problem: its own `baselines()` on the preset's instance
        from opro.problems import PromptTask, build_problem, problem_class

        if problem_class(config.problem).uses_scorer:
            raise OproError(f"the {config.problem} problem's baselines are instructions: opro eval --baselines")
        problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
        if isinstance(problem, PromptTask):
            problem.close()
        found = problem.baselines()
        if not found:
            raise OproError(f"the {config.problem} problem has no baselines (its baselines() is empty)")
        width = max(len(name) for name in found)
        report = {"problem": config.problem, "baselines": found,
                  "_text": "\n".join(f"{name:{width}}  {value:>12.6g}" for name, value in found.items())}
    if as_json:
        click.echo(json.dumps(finite_or_null({k: v for k, v in report.items() if not k.startswith("_")}),
                              default=str, allow_nan=False))
    else:
        click.echo(report["_text"] if "_text" in report else reports.tsp_text(report))


def finite_or_null(value):
    """`value` (dicts and lists of numbers) with nan and inf as None, so that it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def _seed_list(text: str | None, default: int) -> list[int]:
    from opro.stats import parse_seeds

    return parse_seeds(text) if text else [default]



@click.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: results/compare-TIME).")
@click.option("--no-plot", is_flag=True, help="Tables only.")
def compare(dirs: tuple[str, ...], out: str | None, no_plot: bool) -> None:
    """Gather runs (and their baselines) into one table per task: CSV, markdown and PNG plots."""
    import time

    from opro.compare import compare as gather
    from opro.results import prepare_output

    target = Path(out) if out else Path("results") / ("compare-" + time.strftime("%Y%m%d-%H%M%S"))
    prepare_output(target, "--out", folder=True, create=False)
    report = gather([Path(d) for d in dirs], target, plot=not no_plot, on_skip=warn_skipped)
    for line in report["seed_repeats"]:
        click.echo(f"opro: warning: {line}", err=True)
    click.echo(report["markdown"])
    click.echo(f"{report['runs']} runs; tables and plots in {target}")



@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="The HTML file (default: PATH/report.html).")
@click.option("--screenshot", "screenshot_path", type=click.Path(dir_okay=False),
              help="Also render the report to this PNG in headless Chromium.")
def report(path: str, out: str | None, screenshot_path: str | None) -> None:
    """Write a self-contained HTML report of a run or a tree of runs (opens with no server)."""
    from opro.report import screenshot, write_report
    from opro.results import prepare_output

    for label, given in (("--out", out), ("--screenshot", screenshot_path)):
        if given:
            prepare_output(Path(given), label, folder=False, create=False)
    target = write_report(Path(path), Path(out) if out else None, on_skip=warn_skipped,
                          on_warning=lambda line: click.echo(f"opro: warning: {line}", err=True))
    click.echo(f"report: {target}")
    if screenshot_path:
        click.echo(f"screenshot: {screenshot(target, Path(screenshot_path))}")

