"""The `opro` command line: argument parsing and progress display only."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opro.errors import OproError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="opro")
def cli() -> None:
    """LLMs as optimizers: run the OPRO loop, compare it with baselines, analyse the results."""


@cli.command()
@click.option("--task", default="tsp", show_default=True, help="Preset name (see `opro tasks`) or a .toml path.")
@click.option("--seed", type=int, help="Seeds the instance, the initial solutions and every sample.")
@click.option("--steps", type=int, help="Optimization steps (loop.steps).")
@click.option("--candidates", type=int, help="Proposals per step (loop.candidates_per_step).")
@click.option("--temperature", type=float, help="Optimizer temperature (loop.temperature).")
@click.option("--top-k", type=int, help="Solutions shown in the meta-prompt (loop.top_k).")
@click.option("--max-tokens", type=int, help="Completion limit per proposal (loop.max_tokens).")
@click.option("--optimizer", help="Optimizer LLM spec, e.g. llamacpp:smollm2 or llamacpp:/path/model.gguf.")
@click.option("--threads", type=int, help="CPU threads for the embedded model.")
@click.option("--n-ctx", type=int, help="Context length per slot for the embedded model.")
@click.option("--parallel", type=int, help="Parallel decoding slots for the embedded model.")
@click.option("--n", "n_nodes", type=int, help="TSP: number of nodes of a random instance (problem.n).")
@click.option("--instance", type=click.Path(dir_okay=False), help="TSP: a TSPLIB .tsp file (problem.instance).")
@click.option("--results", "results_root", type=click.Path(file_okay=False), help="Results root (default results/).")
@click.option("--run-id", help="Name of the run directory (default: time and seed).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any preset setting, e.g. --set problem.w_true=3 --set loop.resample_rounds=0.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue a stopped run directory (only --steps may change).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(task: str, seed: int | None, steps: int | None, candidates: int | None, temperature: float | None,
        top_k: int | None, max_tokens: int | None, optimizer: str | None, threads: int | None,
        n_ctx: int | None, parallel: int | None, n_nodes: int | None, instance: str | None,
        results_root: str | None, run_id: str | None, settings: tuple[str, ...], resume_dir: str | None,
        quiet: bool) -> None:
    """Run the OPRO loop on a task and write a run directory under results/."""
    from opro.config import build_config, parse_override
    from opro.run import resume_run, start_run

    overrides = {
        "seed": seed, "loop.candidates_per_step": candidates, "loop.temperature": temperature,
        "loop.top_k": top_k, "loop.max_tokens": max_tokens, "optimizer.spec": optimizer,
        "optimizer.threads": threads, "optimizer.n_ctx": n_ctx, "optimizer.parallel": parallel,
        "problem.n": n_nodes, "problem.instance": instance, "results_root": results_root,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    overrides.update(parse_override(item) for item in settings)
    progress = _Progress(quiet)
    if resume_dir:
        given = list(overrides)
        if given or run_id:
            named = given[0] if given else "run-id"
            raise OproError(f"--resume continues a run as configured; only --steps may change (got {named})")
        with progress:
            run_dir, summary = resume_run(Path(resume_dir), steps, progress.start, progress.step)
    else:
        if instance is not None:
            if not Path(instance).is_file():
                raise OproError(f"instance file not found: {instance}")
            overrides["problem.instance"] = str(Path(instance).resolve())
        if steps is not None:
            overrides["loop.steps"] = steps
        config = build_config(task, overrides)
        with progress:
            run_dir, summary = start_run(config, run_id, progress.start, progress.step)
    click.echo(_summary_line(summary, run_dir.path))


@cli.command()
def tasks() -> None:
    """List the task presets."""
    from opro.config import preset_names, read_preset

    for name in preset_names():
        click.echo(f"{name:<14} {read_preset(name).get('description', '')}")


@cli.command("fetch-model")
def fetch_model() -> None:
    """Download and verify the default model (SmolLM2-135M-Instruct GGUF) into the user cache."""
    from opro.llm.models import default_model_path

    click.echo(str(default_model_path()))


class _Progress:
    """A rich progress bar on stderr: step, best so far, valid rate."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.n_candidates = self.n_valid = 0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, run_dir, config) -> None:
        if self.quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"), console=Console(stderr=True),
        )
        self.task = self.bar.add_task(config.task, total=config.loop.steps, status=f"→ {run_dir.path}")
        self.bar.start()

    def step(self, row) -> None:
        if row.step > 0:
            self.n_candidates += row.n_candidates
            self.n_valid += row.n_valid
        if self.bar is None:
            return
        rate = f"{self.n_valid / self.n_candidates:.0%}" if self.n_candidates else "-"
        status = f"best {row.best_so_far:.6g}  valid {rate}" + ("  [green]optimal" if row.optimal else "")
        self.bar.update(self.task, completed=row.step, status=status)


def _summary_line(summary: dict, path: Path) -> str:
    parts = [f"best {summary['best_score']:.6g}"]
    if summary["optimum"] is not None:
        parts.append(f"optimum {summary['optimum']:.6g} (gap {summary['gap_percent']:.2f}%)")
    rate = summary["valid_rate"]
    parts.append(f"{summary['steps_run']} steps, stop: {summary['stop_reason']}")
    parts.append("valid " + ("-" if rate is None else f"{rate:.0%}"))
    return "; ".join(parts) + f"\nresults: {path}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="opro", standalone_mode=False)
    except OproError as error:
        click.echo(f"opro: error: {error}", err=True)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"opro: error: {error.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("opro: interrupted; completed steps are saved (continue with --resume RUN_DIR)", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("opro: interrupted; completed steps are saved (continue with --resume RUN_DIR)", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
