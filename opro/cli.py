"""The `opro` command line: argument parsing and progress display only."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path

import click

from opro.cli_progress import PlottingProgress, RunProgress
from opro.cli_prompts import eval_command
from opro.cli_reproduce import reproduce
from opro.cli_results import baselines, compare, report
from opro.cli_shared import absolute_data_path, option_given, warn_truncated
from opro.cli_sweep import sweep
from opro.config import METHODS
from opro.errors import OproError
from opro.redact import redact
from opro.rl.commands import rl
from opro.text import valid_argument


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="opro")
@click.option("--debug", is_flag=True, help="Show the traceback of an error in a problem's own code.")
def cli(debug: bool) -> None:
    """LLMs as optimizers: run the OPRO loop, compare it with baselines, analyse the results."""
    if debug:
        import os

        from opro.problems.check import DEBUG_ENV

        os.environ[DEBUG_ENV] = "1"


# the subcommands that live in sibling modules (opro/cli_*.py, opro/rl/commands.py)
for _command in (sweep, reproduce, baselines, compare, eval_command, report, rl):
    cli.add_command(_command)


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
@click.option("--base-url", help="Server URL for openai: LLMs, the optimizer's and the scorer's unless "
              "--scorer-base-url is given (default $OPENAI_BASE_URL).")
@click.option("--api-key", help="API key for openai: (default $OPENAI_API_KEY); the scorer's too unless "
              "--scorer-api-key is given. Used, never stored.")
@click.option("--scorer-base-url", help="The scorer's server URL, when it differs from --base-url.")
@click.option("--scorer-api-key", help="The scorer's API key, when it differs from --api-key. Used, never stored.")
@click.option("--concurrency", type=int, help="Requests in flight per LLM (default 8).")
@click.option("--no-cache", is_flag=True, default=None, help="Do not read or write the persistent LLM-call cache.")
@click.option("--max-tokens-total", type=int, help="Stop at a step boundary once this many tokens are used.")
@click.option("--max-cost", type=float, help="Stop at a step boundary once this many USD are spent.")
@click.option("--max-scorer-calls", type=int,
              help="Prompt tasks: stop at a step boundary once the scorer was asked this many times.")
@click.option("--method", type=click.Choice(METHODS),
              help="How candidates are proposed (loop.method; default opro).")
@click.option("--prices", type=click.Path(dir_okay=False), help="A TOML price table over the built-in one.")
@click.option("--threads", metavar="N|auto",
              help="CPU threads for the embedded model (default: the machine's cores; auto: the faster of all cores "
                   "and one fewer, timed at start-up, so the samples depend on the load).")
@click.option("--n-ctx", type=int, help="Context length per slot for the embedded model.")
@click.option("--parallel", type=int, help="Parallel decoding slots for the embedded model.")
@click.option("--n", "n_nodes", type=int, help="TSP: number of nodes of a random instance (problem.n).")
@click.option("--instance", type=click.Path(dir_okay=False),
              help="TSP: a TSPLIB .tsp file, or a shipped one by name (burma14; problem.instance).")
@click.option("--data", "data_path", type=click.Path(), help="Prompt tasks: local data file or folder (problem.data).")
@click.option("--screen", is_flag=True, default=None,
              help="Prompt tasks: score new instructions on a subset first, fully only if they could enter the top-k.")
@click.option("--results", "results_root", type=click.Path(file_okay=False), help="Results root (default results/).")
@click.option("--run-id", help="Name of the run directory, or of the group's parent (default: time and seed).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any preset setting, e.g. --set problem.w_true=3 --set loop.resample_rounds=0.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue a stopped run (or group of runs); only --steps, the budgets and the LLMs' connection "
                   "(--base-url, --concurrency, --set scorer.base_url=...) may change.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--dry-run", is_flag=True,
              help="Check the settings, templates, instance and data, print the plan and exit (no model, no files).")
@click.option("--rl-every", type=int, metavar="K",
              help="RL hook: update the hf: optimizer after every K steps on the groups just produced.")
@click.option("--rl-algo", type=click.Choice(["grpo", "dpo"]), default="grpo", show_default=True,
              help="RL hook: the update's algorithm.")
@click.option("--rl-lora-rank", type=int, default=0, show_default=True,
              help="RL hook: train a LoRA adapter of this rank (no reference reload per update; 0: every weight).")
@click.option("--track", multiple=True, type=click.Choice(["mlflow", "wandb"]),
              help="Also log the run to MLflow or W&B (the mlflow / wandb extras; see docs/tracking.md).")
@click.option("--plot-every", type=int, metavar="N",
              help="Also write the optimization curve to RUN_DIR/curve.png every N steps (watch a long run).")
def run(task: str, seed: int | None, seeds_text: str | None, instances: int | None, steps: int | None,
        candidates: int | None, temperature: float | None, top_k: int | None, max_tokens: int | None,
        optimizer: str | None, scorer: str | None, base_url: str | None, api_key: str | None,
        concurrency: int | None, no_cache: bool | None, max_tokens_total: int | None, max_cost: float | None,
        prices: str | None, threads: str | None, n_ctx: int | None, parallel: int | None, n_nodes: int | None,
        instance: str | None, results_root: str | None, run_id: str | None, settings: tuple[str, ...],
        resume_dir: str | None, quiet: bool, data_path: str | None = None, screen: bool | None = None,
        plot_every: int | None = None, rl_every: int | None = None, rl_algo: str = "grpo", rl_lora_rank: int = 0,
        dry_run: bool = False, max_scorer_calls: int | None = None, method: str | None = None,
        track: tuple[str, ...] = (), scorer_base_url: str | None = None,
        scorer_api_key: str | None = None) -> None:
    """Run the OPRO loop on a task and write a run directory under results/."""
    from opro.config import build_config, parse_override, read_preset
    from opro.runner import resume_group, resume_run, run_group, start_run
    from opro.stats import parse_seeds
    from opro.tracking import Tracking, chain, track_settings

    overrides = {
        "seed": seed, "loop.candidates_per_step": candidates, "loop.temperature": temperature,
        "loop.top_k": top_k, "loop.max_tokens": max_tokens, "optimizer.spec": optimizer, "scorer.spec": scorer,
        "llm.base_url": base_url, "scorer.base_url": scorer_base_url, "llm.concurrency": concurrency,
        "llm.cache": False if no_cache else None,
        "llm.prices": str(Path(prices).resolve()) if prices else None,
        "optimizer.threads": _threads(threads), "optimizer.n_ctx": n_ctx, "optimizer.parallel": parallel,
        "problem.n": n_nodes, "problem.instance": instance, "results_root": results_root,
        "problem.data": absolute_data_path(data_path), "problem.screen": screen, "loop.method": method,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    overrides.update(parse_override(item) for item in settings)
    if scorer_api_key is not None:
        api_key = (api_key, scorer_api_key)  # type: ignore[assignment]  # opro.runner.role_key
    if prices and not Path(prices).is_file():
        raise OproError(f"price table not found: {prices}")
    budgets = {"steps": steps, "max_tokens_total": max_tokens_total, "max_cost": max_cost,
               "max_scorer_calls": max_scorer_calls}
    progress = RunProgress(quiet) if plot_every is None else PlottingProgress(quiet, plot_every)
    preset_track = None if resume_dir else read_preset(task).get("track")  # a resume: the run's tracking.json
    tracking = Tracking(track_settings(preset_track, track, f"task {task}"), _warn)
    on_start, on_step = chain(tracking.start, progress.start), chain(progress.step, tracking.step)
    if dry_run and resume_dir:
        raise OproError("--dry-run checks a new run; leave out --resume")
    if run_id is not None:
        from opro.results import check_run_id

        check_run_id(run_id)
    if rl_every is not None and (resume_dir or seeds_text is not None or instances is not None):
        raise OproError("--rl-every trains during one new run (not with --resume, --seeds or --instances)")
    if resume_dir:
        from opro.runner import is_connection_key

        connection = {key: value for key, value in overrides.items() if is_connection_key(key)}
        budgets.update(connection)  # a server that moved: --base-url, --set scorer.base_url=...
        given = [key for key in overrides if key not in connection]
        given += [name for name, v in (("--seeds", seeds_text), ("--instances", instances)) if v]
        if option_given("task"):  # the run's own task, as stored (a --task that differs would be ignored)
            given.insert(0, "--task")
        if given or run_id:
            named = given[0] if given else "run-id"
            raise OproError(f"--resume continues a run as configured; only --steps, the budgets and the LLMs' "
                            f"connection (--base-url, --set scorer.base_url=...) may change (got {named})")
        path = Path(resume_dir)
        with progress, tracking:
            if (path / "group.json").is_file():
                parent, runs = resume_group(path, budgets, on_start, on_step, api_key)
                _echo_group(parent, runs)
                return
            run_dir, summary = resume_run(path, budgets, on_start, on_step, api_key)
        click.echo(_summary_line(summary, run_dir.path))
        return
    if instance is not None:
        from opro.tsplib import resolve_instance

        overrides["problem.instance"] = str(resolve_instance(instance))
    overrides.update({f"loop.{k}": v for k, v in budgets.items() if v is not None})
    from opro.plan import screen_note

    config = build_config(task, overrides)  # a group's runs differ from it only in seed and instance
    if note := screen_note(config):
        _warn(note)
    if seeds_text is not None or instances is not None:
        if instances is not None and (instances < 1 or instance is not None):
            raise OproError("--instances needs K >= 1 random instances (not with --instance FILE)")
        if seed is not None and seeds_text is not None:
            raise OproError("give --seed or --seeds, not both")
        base = [seed if seed is not None else config.seed]
        seeds = parse_seeds(seeds_text) if seeds_text is not None else base
        if dry_run:
            from opro.runner import plan_group

            _dry_run([build_config(task, {**overrides, **extra}) for _, extra in plan_group(seeds, instances)],
                     api_key, tracking)
            return
        with progress, tracking:
            parent, runs = run_group(task, overrides, seeds, instances, run_id, on_start, on_step, api_key)
        _echo_group(parent, runs)
        return
    if dry_run:
        _dry_run([config], api_key, tracking)
        return
    if rl_every is not None:
        from opro.rl.online import OnlineRLConfig, run_online

        with progress, tracking:
            online = OnlineRLConfig(every=rl_every, algo=rl_algo, lora_rank=rl_lora_rank)
            run_dir, summary = run_online(config, online, run_id, on_start, on_step)
        click.echo(_summary_line(summary, run_dir.path))
        return
    with progress, tracking:
        run_dir, summary = start_run(config, run_id, on_start, on_step, api_key)
    click.echo(_summary_line(summary, run_dir.path))


def _threads(text: str | None) -> int | str | None:
    """`--threads N` or `--threads auto`."""
    if text is None or text == "auto":
        return text
    if not text.strip().isdecimal():
        raise OproError(f'--threads must be a positive integer or "auto", got {text!r}')
    return int(text)


def _dry_run(configs: list, api_key: str | None = None, tracking=None) -> None:
    """Build every problem instance (no optimum, no model) and print what would run: the plan (opro/plan.py)."""
    from opro.plan import plan_lines
    from opro.problems import PromptTask, build_problem, problem_class
    from opro.runner import task_label

    lines: list[str] = []
    for config in configs:
        settings = {**config.problem_settings, **problem_class(config.problem).QUICK_SETTINGS}
        problem = build_problem(config.problem, settings, config.seed)
        if not lines:
            lines = plan_lines(config, problem, len(configs), api_key)
        if isinstance(problem, PromptTask):
            problem.close()
    first = configs[0]
    click.echo(f"ok: {len(configs)} run(s) of {first.task} ({first.problem}, {first.loop.steps} steps, "
               f"{first.optimizer.spec}) -> {Path(first.results_root) / task_label(first.task)}")
    for name, options in (tracking.settings if tracking else {}).items():
        lines.append(f"{'track':<14} {name} " + (", ".join(f"{k} {v}" for k, v in options.items()) or "(defaults)"))
    for line in lines:
        click.echo(f"  {line}")


def _warn(message: str) -> None:
    click.echo(f"opro: warning: {message}", err=True)


def _echo_group(parent: Path, runs: list) -> None:
    for run_dir, summary in runs:
        click.echo(f"{run_dir.path.name}: " + _summary_line(summary, run_dir.path).splitlines()[0])
    click.echo(f"results: {parent}  (compare with: opro compare {parent})")


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


def _summary_line(summary: dict, path: Path) -> str:
    instance = summary.get("instance")
    warn_truncated(instance.get("scorer_truncated_rate") if isinstance(instance, dict) else None)
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


def _one_line(message: str) -> str:
    """A message as one line: a value quoted in it may hold line breaks."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip()) or "(no message)"


#: What each command leaves behind when it is interrupted, and how to go on (`opro: interrupted; ...`).
INTERRUPTED = {
    "run": "completed steps are saved (continue with --resume RUN_DIR)",
    "baselines": "no table was written (run the same command again; TSP optima already certified are cached)",
    "compare": "the runs were only read (run the same command again)",
    "report": "the runs were only read (run the same command again)",
    "eval": "the answers scored so far are in the score cache (run the same command again to go on from them)",
    "fetch-model": "run `opro fetch-model` again (the file is checked against its sha256)",
}
#: OSError numbers that come from the machine (a full or read-only disk), not from the input or a bug.
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def interrupted_line(argv: list[str]) -> str:
    """The line printed on Ctrl-C: what the command `argv` names can do next."""
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    return "opro: interrupted" + (f"; {INTERRUPTED[command]}" if command in INTERRUPTED else "")


def _drop_stdout() -> None:
    """Send whatever stdout still holds to /dev/null (stdout may be the full disk: no traceback at exit)."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    argv = _expand_sizes([valid_argument(a) for a in (sys.argv[1:] if argv is None else argv)])
    try:
        cli.main(args=argv, prog_name="opro", standalone_mode=False)
        sys.stdout.flush()  # stdout may be a full disk: reported below, while errors can still be
    except OSError as error:  # a full disk where no part wrapped it (stdout, an output file): one line too
        if error.errno not in MACHINE_ERRNOS:
            raise
        _drop_stdout()
        where = error.filename or "the output"
        click.echo(f"opro: error: cannot write {where}: {error.strerror}; what was written before is kept", err=True)
        sys.exit(2)
    except OproError as error:
        click.echo(f"opro: error: {_one_line(redact(str(error)))}", err=True)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"opro: error: {_one_line(redact(error.format_message()))}", err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(interrupted_line(argv), err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
