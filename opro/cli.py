"""The `opro` command line: argument parsing and progress display only."""

from __future__ import annotations

import json
import math
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
@click.option("--seeds", "seeds_text", metavar="LIST",
              help="Repeat the run for each seed (0-4 or 0,2,5), one run directory each under a common parent.")
@click.option("--instances", type=int,
              help="Repeat on K instances (problem seeds 0..K-1), for every seed; with --seeds.")
@click.option("--steps", type=int, help="Optimization steps (loop.steps).")
@click.option("--candidates", type=int, help="Proposals per step (loop.candidates_per_step).")
@click.option("--temperature", type=float, help="Optimizer temperature (loop.temperature).")
@click.option("--top-k", type=int, help="Solutions shown in the meta-prompt (loop.top_k).")
@click.option("--max-tokens", type=int, help="Completion limit per proposal (loop.max_tokens).")
@click.option("--optimizer", help="Optimizer LLM: llamacpp:smollm2, llamacpp:/path/model.gguf, openai:MODEL or hf:DIR.")
@click.option("--scorer", help="Scorer LLM for tasks an LLM scores (prompt optimization); any backend spec.")
@click.option("--base-url", help="Optimizer server URL for openai: (default $OPENAI_BASE_URL).")
@click.option("--api-key", help="API key for openai: (default $OPENAI_API_KEY). Used, never stored.")
@click.option("--concurrency", type=int, help="Requests in flight per LLM (default 8).")
@click.option("--no-cache", is_flag=True, default=None, help="Do not read or write the persistent LLM-call cache.")
@click.option("--max-tokens-total", type=int, help="Stop at a step boundary once this many tokens are used.")
@click.option("--max-cost", type=float, help="Stop at a step boundary once this many USD are spent.")
@click.option("--prices", type=click.Path(dir_okay=False), help="A TOML price table over the built-in one.")
@click.option("--threads", type=int, help="CPU threads for the embedded model.")
@click.option("--n-ctx", type=int, help="Context length per slot for the embedded model.")
@click.option("--parallel", type=int, help="Parallel decoding slots for the embedded model.")
@click.option("--n", "n_nodes", type=int, help="TSP: number of nodes of a random instance (problem.n).")
@click.option("--instance", type=click.Path(dir_okay=False), help="TSP: a TSPLIB .tsp file (problem.instance).")
@click.option("--data", "data_path", type=click.Path(), help="Prompt tasks: local data file or folder (problem.data).")
@click.option("--screen", is_flag=True, default=None,
              help="Prompt tasks: score new instructions on a subset first, fully only if they could enter the top-k.")
@click.option("--results", "results_root", type=click.Path(file_okay=False), help="Results root (default results/).")
@click.option("--run-id", help="Name of the run directory, or of the group's parent (default: time and seed).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any preset setting, e.g. --set problem.w_true=3 --set loop.resample_rounds=0.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue a stopped run (or group of runs); only --steps and the budgets may change.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--dry-run", is_flag=True,
              help="Check the settings, templates, instance and data, print the plan and exit (no model, no files).")
@click.option("--rl-every", type=int, metavar="K",
              help="RL hook: update the hf: optimizer after every K steps on the groups just produced.")
@click.option("--rl-algo", type=click.Choice(["grpo", "dpo"]), default="grpo", show_default=True,
              help="RL hook: the update's algorithm.")
@click.option("--plot-every", type=int, metavar="N",
              help="Also write the optimization curve to RUN_DIR/curve.png every N steps (watch a long run).")
def run(task: str, seed: int | None, seeds_text: str | None, instances: int | None, steps: int | None,
        candidates: int | None, temperature: float | None, top_k: int | None, max_tokens: int | None,
        optimizer: str | None, scorer: str | None, base_url: str | None, api_key: str | None,
        concurrency: int | None, no_cache: bool | None, max_tokens_total: int | None, max_cost: float | None,
        prices: str | None, threads: int | None, n_ctx: int | None, parallel: int | None, n_nodes: int | None,
        instance: str | None, results_root: str | None, run_id: str | None, settings: tuple[str, ...],
        resume_dir: str | None, quiet: bool, data_path: str | None = None, screen: bool | None = None,
        plot_every: int | None = None, rl_every: int | None = None, rl_algo: str = "grpo",
        dry_run: bool = False) -> None:
    """Run the OPRO loop on a task and write a run directory under results/."""
    from opro.config import build_config, parse_override
    from opro.run import resume_group, resume_run, run_group, start_run
    from opro.stats import parse_seeds

    overrides = {
        "seed": seed, "loop.candidates_per_step": candidates, "loop.temperature": temperature,
        "loop.top_k": top_k, "loop.max_tokens": max_tokens, "optimizer.spec": optimizer, "scorer.spec": scorer,
        "optimizer.base_url": base_url, "llm.concurrency": concurrency, "llm.cache": False if no_cache else None,
        "llm.prices": str(Path(prices).resolve()) if prices else None,
        "optimizer.threads": threads, "optimizer.n_ctx": n_ctx, "optimizer.parallel": parallel,
        "problem.n": n_nodes, "problem.instance": instance, "results_root": results_root,
        "problem.data": _data_path(data_path), "problem.screen": screen,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    overrides.update(parse_override(item) for item in settings)
    if prices and not Path(prices).is_file():
        raise OproError(f"price table not found: {prices}")
    budgets = {"steps": steps, "max_tokens_total": max_tokens_total, "max_cost": max_cost}
    progress = _Progress(quiet) if plot_every is None else _PlottingProgress(quiet, plot_every)
    if dry_run and resume_dir:
        raise OproError("--dry-run checks a new run; leave out --resume")
    if run_id is not None:
        from opro.results import check_run_id

        check_run_id(run_id)
    if rl_every is not None and (resume_dir or seeds_text is not None or instances is not None):
        raise OproError("--rl-every trains during one new run (not with --resume, --seeds or --instances)")
    if resume_dir:
        given = list(overrides) + [name for name, v in (("--seeds", seeds_text), ("--instances", instances)) if v]
        if given or run_id:
            named = given[0] if given else "run-id"
            raise OproError(f"--resume continues a run as configured; only --steps and the budgets may change "
                            f"(got {named})")
        path = Path(resume_dir)
        with progress:
            if (path / "group.json").is_file():
                parent, runs = resume_group(path, budgets, progress.start, progress.step, api_key)
                _echo_group(parent, runs)
                return
            run_dir, summary = resume_run(path, budgets, progress.start, progress.step, api_key)
        click.echo(_summary_line(summary, run_dir.path))
        return
    if instance is not None:
        if not Path(instance).is_file():
            raise OproError(f"instance file not found: {instance}")
        overrides["problem.instance"] = str(Path(instance).resolve())
    overrides.update({f"loop.{k}": v for k, v in budgets.items() if v is not None})
    if seeds_text is not None or instances is not None:
        if instances is not None and (instances < 1 or instance is not None):
            raise OproError("--instances needs K >= 1 random instances (not with --instance FILE)")
        if seed is not None and seeds_text is not None:
            raise OproError("give --seed or --seeds, not both")
        base = [seed if seed is not None else build_config(task, overrides).seed]
        seeds = parse_seeds(seeds_text) if seeds_text is not None else base
        if dry_run:
            from opro.run import plan_group

            _dry_run([build_config(task, {**overrides, **extra}) for _, extra in plan_group(seeds, instances)])
            return
        with progress:
            parent, runs = run_group(task, overrides, seeds, instances, run_id, progress.start, progress.step,
                                     api_key)
        _echo_group(parent, runs)
        return
    config = build_config(task, overrides)
    if dry_run:
        _dry_run([config])
        return
    if rl_every is not None:
        from opro.rl.online import OnlineRLConfig, run_online

        with progress:
            run_dir, summary = run_online(config, OnlineRLConfig(every=rl_every, algo=rl_algo), run_id,
                                          progress.start, progress.step)
        click.echo(_summary_line(summary, run_dir.path))
        return
    with progress:
        run_dir, summary = start_run(config, run_id, progress.start, progress.step, api_key)
    click.echo(_summary_line(summary, run_dir.path))


def _dry_run(configs: list) -> None:
    """Build every problem instance (no optimum, no model) and print what would run."""
    from opro.problems import build_problem
    from opro.run import task_label

    for config in configs:
        settings = {**config.problem_settings, **({"optimum": False} if config.problem == "tsp" else {})}
        problem = build_problem(config.problem, settings, config.seed)
        if hasattr(problem, "close"):
            problem.close()
    first = configs[0]
    click.echo(f"ok: {len(configs)} run(s) of {first.task} ({first.problem}, {first.loop.steps} steps, "
               f"{first.optimizer.spec}) -> {Path(first.results_root) / task_label(first.task)}")


def _data_path(path: str | None) -> str | None:
    """`--data PATH` as an absolute path (so a resumed run finds it), checked to exist."""
    if path is None:
        return None
    if not Path(path).exists():
        raise OproError(f"data not found: {path}")
    return str(Path(path).resolve())


def _echo_group(parent: Path, runs: list) -> None:
    for run_dir, summary in runs:
        click.echo(f"{run_dir.path.name}: " + _summary_line(summary, run_dir.path).splitlines()[0])
    click.echo(f"results: {parent}  (compare with: opro compare {parent})")


@cli.command()
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
def sweep(sweep_file: str, backend: str, workers: int | None, address: str | None, retry_failed: bool,
          show_status: bool, dry_run: bool, results_root: str | None, name: str | None, settings: tuple[str, ...],
          quiet: bool) -> None:
    """Run a grid of runs from SWEEP_FILE, one run directory per cell under one parent; run it again to resume."""
    from opro import sweep as sweeps
    from opro.config import parse_override

    if workers is not None and workers < 1:
        raise OproError(f"--workers must be >= 1, got {workers}")
    if address and backend != "ray":
        raise OproError("--address joins a Ray cluster: add --backend ray")
    plan = sweeps.read_sweep(Path(sweep_file), results_root, name, dict(parse_override(item) for item in settings))
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
    if backend == "ray":  # before the sweep's folder is made
        from opro.extras import require

        require("ray", extra="ray", feature="--backend ray")
    driver = sweeps.SweepDriver(plan, None if quiet else sweeps.print_event())
    driver.open()
    try:
        size = workers or sweeps.default_workers(plan.resources)
        pool = (sweeps.RayPool(workers, address, plan.resources) if backend == "ray"
                else sweeps.LocalPool(size))
        counts = driver.run(pool, sweeps.cell_threads(backend, pool.capacity, plan.resources), retry_failed)
    except KeyboardInterrupt:
        click.echo(f"opro: interrupted; completed steps are saved (run `opro sweep {sweep_file}` again to resume)",
                   err=True)
        sys.exit(130)
    finally:
        driver.close()
    click.echo(f"sweep {plan.name}: {counts['done']}/{len(driver.record['cells'])} cells done, {counts['failed']} "
               f"failed; results: {plan.parent}  (compare with: opro compare {plan.parent})")
    if counts["failed"]:
        click.echo(f"failed cells are listed by `opro sweep {sweep_file} --status`; run them again with "
                   "--retry-failed", err=True)
        sys.exit(1)


@cli.command()
@click.option("--task", default="tsp", show_default=True, help="Preset name or .toml path (tsp or linreg kind).")
@click.option("--instance", type=click.Path(dir_okay=False), help="TSP: a TSPLIB .tsp file.")
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
        if not Path(instance).is_file():
            raise OproError(f"instance file not found: {instance}")
        overrides["problem.instance"] = str(Path(instance).resolve())
    config = build_config(task, overrides)
    Range(0, 365 * 86_400, above=True).check("--time-limit", time_limit)  # nan fails every comparison
    if out:
        prepare_output(Path(out), "--out", folder=True, create=False)
    if config.problem == "tsp":
        if sizes or instances is not None:
            if instance is not None:
                raise OproError("--n/--instances make random instances; leave out --instance")
            from opro.config import MAX_REPEATS
            from opro.problems import check_problem_settings

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
    elif config.problem == "linreg":
        seeds = _seed_list(seeds_text, config.seed)
        report = reports.linreg_table(config, seeds, Path(out) if out else None)
    else:
        raise OproError(f"no baselines for the {config.problem} problem")
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


@cli.command()
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
    report = gather([Path(d) for d in dirs], target, plot=not no_plot, on_skip=_warn_skipped)
    click.echo(report["markdown"])
    click.echo(f"{report['runs']} runs; tables and plots in {target}")


@cli.command("eval")
@click.option("--task", default=None, help="Prompt task preset (gsm8k, bbh, mmlu) or .toml path (default gsm8k).")
@click.option("--instruction", "instructions", multiple=True, help="An instruction to evaluate (repeatable).")
@click.option("--baselines", "with_baselines", is_flag=True,
              help="Also the paper's baselines: \"\", step by step, solve the problem, deep breath.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="Evaluate this run's best instruction.")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default="test", show_default=True)
@click.option("--limit", type=int, help="Only the first N examples of the split.")
@click.option("--dataset", type=click.Choice(["gsm8k", "bbh", "mmlu", "multiarith", "aqua"]),
              help="Evaluate on another dataset (transfer: multiarith, aqua) than the task's.")
@click.option("--data", "data_path", type=click.Path(), help="Local data file or folder (problem.data).")
@click.option("--scorer", help="Scorer LLM spec (default: the task's or run's scorer, else its optimizer).")
@click.option("--threads", type=int, help="CPU threads for the embedded scorer.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any preset setting, e.g. problem.position=Q_end.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: results/<task>/eval-TIME, "
              "or RUN/eval-<split> with --run).")
def eval_command(task: str | None, instructions: tuple[str, ...], with_baselines: bool, run_dir: str | None,
                 split: str, limit: int | None, dataset: str | None, data_path: str | None, scorer: str | None,
                 threads: int | None, settings: tuple[str, ...], out: str | None) -> None:
    """Accuracy of instructions on a split (default: the paper's baselines on the test split)."""
    import time

    from opro.config import build_config, parse_override
    from opro.prompting.evaluate import (
        PAPER_BASELINES,
        evaluate_instructions,
        format_rows,
        run_best,
        with_problem_settings,
    )
    from opro.run import build_run_problem, task_label

    overrides = dict(parse_override(item) for item in settings)
    overrides.update({k: v for k, v in {"scorer.spec": scorer, "llm.threads": threads}.items() if v is not None})
    chosen = [("given", text) for text in instructions]
    if run_dir:
        if task is not None or settings:
            raise OproError("--run evaluates with the run's own settings; leave out --task and --set")
        config, best = run_best(Path(run_dir))
        chosen.insert(0, (f"run:{run_dir}", best))
        if scorer or threads:
            import dataclasses

            base = config.scorer or config.optimizer
            changes = {"spec": scorer or base.spec, **({"threads": threads} if threads else {})}
            config = dataclasses.replace(config, scorer=dataclasses.replace(base, **changes))
        target = Path(out) if out else Path(run_dir) / f"eval-{split}"
    else:
        config = build_config(task or "gsm8k", overrides)
        target = Path(out) if out else Path(config.results_root) / task_label(config.task) / (
            "eval-" + time.strftime("%Y%m%d-%H%M%S"))
    config = with_problem_settings(config, {"data": _data_path(data_path), "dataset": dataset})
    if out:
        from opro.results import prepare_output

        prepare_output(target, "--out", folder=True, create=False)
    if with_baselines or not chosen:
        chosen += [("baseline", text) for text in PAPER_BASELINES]
    problem = build_run_problem(config)
    if not getattr(problem, "uses_scorer", False):
        raise OproError(f"opro eval is for prompt tasks (gsm8k, bbh), not {config.problem}")
    try:
        rows = evaluate_instructions(problem, chosen, split, limit, target)
    finally:
        problem.close()
    click.echo(format_rows(rows))
    click.echo(f"results: {target}")
    _warn_truncated(max((r.truncated_rate for r in rows if r.truncated_rate is not None), default=None),
                    problem.scorer_max_tokens)


@cli.command()
def tasks() -> None:
    """List the task presets."""
    from opro.config import preset_names, read_preset

    for name in preset_names():
        click.echo(f"{name:<14} {read_preset(name).get('description', '')}")


@cli.command("fetch-model")
def fetch_model() -> None:
    """Download the default model (SmolLM2-135M-Instruct GGUF) into the user cache, or verify the cached file's
    sha256 and fetch it again when it does not match; then check the tuned adapter of llamacpp:smollm2-opro,
    which ships in the package, against its sha256."""
    from opro.llm.models import tuned_adapter_path, verify_default_model

    base = verify_default_model()
    click.echo(f"smollm2: {base}")
    click.echo(f"smollm2-opro: {base} + {tuned_adapter_path()}")


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


class _PlottingProgress(_Progress):
    """The progress bar, plus the optimization curve written to RUN_DIR/curve.png every `every` steps (and at
    the last step, or once the optimum is reached)."""

    def __init__(self, quiet: bool, every: int) -> None:
        if every < 1:
            raise OproError(f"--plot-every must be >= 1, got {every}")
        super().__init__(quiet)
        self.every = every
        self.run_dir: Path | None = None
        self.total = 0
        self.optimal = False

    def start(self, run_dir, config) -> None:
        super().start(run_dir, config)
        self.run_dir, self.total, self.optimal = run_dir.path, config.loop.steps, False

    def step(self, row) -> None:
        super().step(row)
        reached = row.optimal and not self.optimal
        self.optimal = self.optimal or row.optimal
        if self.run_dir is not None and (row.step % self.every == 0 or row.step >= self.total or reached):
            from opro.plots import write_live_curve

            write_live_curve(self.run_dir)


@cli.command()
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
    target = write_report(Path(path), Path(out) if out else None, on_skip=_warn_skipped)
    click.echo(f"report: {target}")
    if screenshot_path:
        click.echo(f"screenshot: {screenshot(target, Path(screenshot_path))}")


def _warn_skipped(path: Path, reason: str) -> None:
    click.echo(f"opro: warning: skipped the unreadable run {path}: {reason}", err=True)


def _warn_truncated(rate: float | None, max_tokens: int | None = None) -> None:
    """One stderr line when a prompt task's scorer answers were cut at their limit too often."""
    from opro.prompting.scoring import truncation_warning

    message = truncation_warning(rate, max_tokens)
    if message:
        click.echo(f"opro: warning: {message}", err=True)


def _summary_line(summary: dict, path: Path) -> str:
    instance = summary.get("instance")
    _warn_truncated(instance.get("scorer_truncated_rate") if isinstance(instance, dict) else None)
    parts = [f"best {summary['best_score']:.6g}"]
    if summary["optimum"] is not None:
        gap = summary.get("gap_percent")
        # an optimum of 0 has no percentage gap: the difference in the score's units instead
        parts.append(f"optimum {summary['optimum']:.6g} (" + (f"gap {gap:.2f}%)" if gap is not None else
                     f"difference {summary['best_score'] - summary['optimum']:.6g})"))
    rate = summary["valid_rate"]
    parts.append(f"{summary['steps_run']} steps, stop: {summary['stop_reason']}")
    parts.append("valid " + ("-" if rate is None else f"{rate:.0%}"))
    from opro.compare import run_table

    table = run_table(summary)
    return "; ".join(parts) + (f"\n{table}" if table else "") + f"\nresults: {path}"


def _expand_sizes(argv: list[str]) -> list[str]:
    """`opro baselines --n 10 15 20` means `--n 10 --n 15 --n 20` (the paper's Table 3 sizes in one go)."""
    if not argv or argv[0] != "baselines":
        return argv
    out: list[str] = []
    after_n = False
    for arg in argv:
        if after_n and arg.isdecimal() and out[-1] != "--n":
            out.append("--n")
        elif arg != "--n":
            after_n = after_n and arg.isdecimal()
        out.append(arg)
        after_n = after_n or arg == "--n"
    return out


def _rl_commands() -> None:
    """`opro rl export|train|convert|eval` (opro/rl/commands.py)."""
    from opro.rl.commands import rl

    cli.add_command(rl)


_rl_commands()


def _one_line(message: str) -> str:
    """A message as one line: a value quoted in it may hold line breaks."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip()) or "(no message)"


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    argv = _expand_sizes(sys.argv[1:] if argv is None else list(argv))
    try:
        cli.main(args=argv, prog_name="opro", standalone_mode=False)
    except OproError as error:
        click.echo(f"opro: error: {_one_line(str(error))}", err=True)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"opro: error: {_one_line(error.format_message())}", err=True)
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
