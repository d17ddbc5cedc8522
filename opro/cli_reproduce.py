"""`opro reproduce EXPERIMENT`: one of the paper's tables or figures with the user's models. Parsing only."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opro.cli_shared import absolute_data_path
from opro.errors import OproError
from opro.reproduce.experiments import EXPERIMENTS


@click.command(epilog="Experiments:\n\n" + "\n\n".join(f"  {k}: {v}" for k, v in EXPERIMENTS.items()))
@click.argument("experiment", type=click.Choice(list(EXPERIMENTS)))
@click.option("--optimizer", help="Optimizer LLM spec (default: llamacpp:smollm2-opro for table2/table3, else "
              "the task preset's).")
@click.option("--scorer", help="Scorer LLM spec, for the prompt experiments (default: the optimizer's model).")
@click.option("--seeds", "seeds_text", metavar="LIST", help="Seeds (TSP: instances) per row, e.g. 0-4 "
              "(default: the paper's count, times --scale).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Shrink steps, seeds and training questions by this factor for a quick look (labelled so).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, help="Runs at once (default: one per CPU).")
@click.option("--address", help="Ray: join this cluster instead of starting one.")
@click.option("--data", "data_path", type=click.Path(), help="Prompt experiments: local data folder or file.")
@click.option("--limit", type=int, help="Prompt experiments: at most N training and N test questions.")
@click.option("--task", help="ablations / overfitting: the prompt task preset (default gsm8k).")
@click.option("--bbh-tasks", help="bbh: comma-separated BBH tasks, or 'all' (default: four of them).")
@click.option("--ablation", "ablations", multiple=True, help="ablations: only this one (repeatable): order, "
              "score_display, exemplars, per_step, starting_point, temperature.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A setting for every run.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder (default results/reproduce/EXPERIMENT[-scaleF]).")
@click.option("--dry-run", is_flag=True, help="Print the grid (every run's settings) and exit.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def reproduce(experiment: str, optimizer: str | None, scorer: str | None, seeds_text: str | None, scale: float,
              backend: str, workers: int | None, address: str | None, data_path: str | None, limit: int | None,
              task: str | None, bbh_tasks: str | None, ablations: tuple[str, ...], settings: tuple[str, ...],
              out: str | None, dry_run: bool, quiet: bool) -> None:
    """Reproduce one of the paper's experiments; writes table.md/table.csv beside the published numbers,
    the figures and reproduce.json. Run it again to resume."""
    from opro import sweep as sweeps
    from opro.config import parse_override
    from opro.reproduce import driver
    from opro.reproduce.experiments import Options, build
    from opro.stats import parse_seeds

    if workers is not None and workers < 1:
        raise OproError(f"--workers must be >= 1, got {workers}")
    if address and backend != "ray":
        raise OproError("--address joins a Ray cluster: add --backend ray")
    if limit is not None and limit < 1:
        raise OproError(f"--limit must be >= 1, got {limit}")
    options = Options(optimizer=optimizer, scorer=scorer, seeds=parse_seeds(seeds_text) if seeds_text else None,
                      scale=scale, settings=dict(parse_override(item) for item in settings),
                      data=absolute_data_path(data_path), limit=limit, task=task,
                      bbh_tasks=tuple(t.strip() for t in bbh_tasks.split(",")) if bbh_tasks else (),
                      ablations=ablations)
    plan = build(experiment, options)
    folder = Path(out) if out else driver.default_folder(plan)
    sweep = driver.to_sweep(plan, folder)
    click.echo(plan.title)
    if dry_run:
        for cell in sweep.cells:
            click.echo(f"{cell.id}  ({cell.task}, {cell.steps} steps)")
        click.echo(f"{len(sweep.cells)} runs in {len(plan.groups)} rows -> {folder}")
        return
    try:
        record = driver.reproduce(plan, folder, backend, workers, address,
                                  None if quiet else sweeps.print_event(), None if quiet else _note)
    except KeyboardInterrupt:
        click.echo("opro: interrupted; completed steps are saved (run the same command again to resume)", err=True)
        sys.exit(130)
    click.echo((folder / "table.md").read_text())
    click.echo(f"results: {folder}  (figures: {', '.join(record['figures']) or 'none'}; "
               f"report: opro report {folder})")
    if record["cells"].get("failed"):
        click.echo(f"{record['cells']['failed']} run(s) failed (their errors are in {folder / 'sweep.json'}); "
                   "run the same command again to retry them", err=True)
        sys.exit(1)


def _note(text: str) -> None:
    click.echo(f"opro: {text}", err=True)
