"""`opro sweep`: a grid of runs from a sweep file. Parsing only."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from opro.errors import OproError


def screen_notes(cells: list) -> dict[str, list[str]]:
    """The cells whose --screen can screen nothing (opro.plan.screen_note), by reason."""
    from opro.config import build_config
    from opro.plan import screen_note

    notes: dict[str, list[str]] = {}
    for cell in cells:
        if note := screen_note(build_config(cell.task, cell.overrides)):
            notes.setdefault(note, []).append(cell.id)
    return notes


@click.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: Ray tasks on a local instance or a cluster.")
@click.option("--workers", type=int, help="Cells at once (default: one per CPU, or per num_cpus in [resources]).")
@click.option("--address", help="Ray: join this cluster (e.g. auto or ray://HEAD:10001) instead of starting one.")
@click.option("--retry-failed", is_flag=True, help="Run the failed cells again (resuming them where they stopped).")
@click.option("--status", "show_status", is_flag=True, help="Print each cell's state and exit.")
@click.option("--dry-run", is_flag=True, help="Print the planned cells and exit.")
@click.option("--results", "results_root", type=click.Path(file_okay=False),
              help="Results root (default: the file's `results`, else results/); the sweep goes to ROOT/sweeps/NAME.")
@click.option("--name", help="The sweep's folder name (default: the file's `name`, else its stem).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A setting for every cell, over [set].")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--track", multiple=True, type=click.Choice(["mlflow", "wandb"]),
              help="Also log the sweep to MLflow or W&B: a parent run, a child run per cell (see [track]).")
def sweep(sweep_file: str, backend: str, workers: int | None, address: str | None, retry_failed: bool,
          show_status: bool, dry_run: bool, results_root: str | None, name: str | None, settings: tuple[str, ...],
          quiet: bool, track: tuple[str, ...] = ()) -> None:
    """Run a grid of runs from SWEEP_FILE, one run directory per cell under one parent; run it again to resume."""
    from opro import sweep as sweeps
    from opro.config import parse_override

    if workers is not None and workers < 1:
        raise OproError(f"--workers must be >= 1, got {workers}")
    if address and backend != "ray":
        raise OproError("--address joins a Ray cluster: add --backend ray")
    plan = sweeps.read_sweep(Path(sweep_file), results_root, name, dict(parse_override(item) for item in settings))
    if track:
        from dataclasses import replace

        from opro.tracking import track_settings

        plan = replace(plan, track={**track_settings(None, track), **plan.track})
    for note, cells in screen_notes(plan.cells).items():
        click.echo(f"opro: warning: {len(cells)} cell(s) ({', '.join(cells)}): {note}", err=True)
    if dry_run:
        for cell in plan.cells:
            click.echo(f"{cell.id}  ({cell.task}, {cell.steps} steps)")
        click.echo(f"{len(plan.cells)} cells -> {plan.parent}")
        return
    if show_status:
        if not (plan.parent / "sweep.json").is_file():
            raise OproError(f"sweep {plan.name} has not started ({plan.parent})")
        click.echo(sweeps.status_table(plan.parent))
        return
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main_thread else None  # `kill` stops it as Ctrl-C does
    try:
        counts = sweeps.run_sweep(plan, backend, workers, address, retry_failed,
                                  None if quiet else sweeps.print_event())
    except KeyboardInterrupt:
        click.echo(f"opro: interrupted; completed steps are saved (run `opro sweep {sweep_file}` again to resume)",
                   err=True)
        sys.exit(130)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    click.echo(f"sweep {plan.name}: {counts['done']}/{len(plan.cells)} cells done, {counts['failed']} "
               f"failed; results: {plan.parent}  (compare with: opro compare {plan.parent})")
    if counts["failed"]:
        click.echo(f"failed cells are listed by `opro sweep {sweep_file} --status`; run them again with "
                   "--retry-failed", err=True)
        sys.exit(1)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
