"""`opro eval`: the accuracy of instructions on a prompt task's split. Parsing only."""

from __future__ import annotations

from pathlib import Path

import click

from opro.cli_shared import absolute_data_path, llm_text, warn_truncated
from opro.errors import OproError


@click.command("eval")
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
@click.option("--base-url", help="The scorer's server URL for openai: (default $OPENAI_BASE_URL).")
@click.option("--api-key", help="API key for openai: (default $OPENAI_API_KEY). Used, never stored.")
@click.option("--concurrency", type=int, help="Scorer requests in flight (default 8).")
@click.option("--no-cache", is_flag=True, default=None, help="Do not read or write the LLM-call and score caches.")
@click.option("--dry-run", is_flag=True, help="Check the settings and data, print the plan and exit (no model).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any preset setting, e.g. problem.position=Q_end.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: results/<task>/eval-TIME, "
              "or RUN/eval-<split> with --run).")
def eval_command(task: str | None, instructions: tuple[str, ...], with_baselines: bool, run_dir: str | None,
                 split: str, limit: int | None, dataset: str | None, data_path: str | None, scorer: str | None,
                 threads: int | None, settings: tuple[str, ...], out: str | None, base_url: str | None = None,
                 api_key: str | None = None, concurrency: int | None = None, no_cache: bool | None = None,
                 dry_run: bool = False) -> None:
    """Accuracy of instructions on a split (default: the paper's baselines on the test split)."""
    import time

    from opro.config import build_config, check_run_ranges, parse_override, with_problem_settings
    from opro.problems import PromptTask
    from opro.prompting.evaluate import PAPER_BASELINES, evaluate_instructions, format_rows
    from opro.readback import run_best
    from opro.runner import build_run_problem, scorer_config, task_label

    overrides = dict(parse_override(item) for item in settings)
    given = dict(overrides)  # --set alone
    server = {"threads": threads, "base_url": base_url, "concurrency": concurrency,
              "cache": False if no_cache else None}
    server = {k: v for k, v in server.items() if v is not None}
    overrides.update({k: v for k, v in {"scorer.spec": scorer, **{f"llm.{k}": v for k, v in server.items()}}.items()
                      if v is not None})
    if no_cache:
        overrides["problem.score_cache"] = False
    chosen = [("given", text) for text in instructions]
    if run_dir:
        if task is not None:
            raise OproError("--run evaluates with the run's own settings; leave out --task")
        server.update(connection_changes(given))
        config, best = run_best(Path(run_dir))
        chosen.insert(0, (f"run:{run_dir}", best))
        if scorer or server:
            import dataclasses

            base = config.scorer or config.optimizer
            changes = {"spec": scorer or base.spec, **server}
            config = dataclasses.replace(config, scorer=dataclasses.replace(base, **changes))
            check_run_ranges(config)
        if no_cache:
            config = with_problem_settings(config, {"score_cache": False})
        target = Path(out) if out else Path(run_dir) / f"eval-{split}"
    else:
        config = build_config(task or "gsm8k", overrides)
        target = Path(out) if out else Path(config.results_root) / task_label(config.task) / (
            "eval-" + time.strftime("%Y%m%d-%H%M%S"))
    config = with_problem_settings(config, {"data": absolute_data_path(data_path), "dataset": dataset})
    if out:
        from opro.results import prepare_output

        prepare_output(target, "--out", folder=True, create=False)
    if with_baselines or not chosen:
        chosen += [("baseline", text) for text in PAPER_BASELINES]
    if dry_run:
        from opro.problems import build_problem

        problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
        if not isinstance(problem, PromptTask):
            raise OproError(f"opro eval is for prompt tasks (gsm8k, bbh), not {config.problem}")
        problem.close()
        click.echo(f"ok: {len(chosen)} instruction(s) on {config.task} {split} "
                   f"({len(problem.examples(split)[:limit])} examples), scorer {llm_text(scorer_config(config))} "
                   f"-> {target}")
        return
    problem = build_run_problem(config, api_key)
    if not isinstance(problem, PromptTask):
        raise OproError(f"opro eval is for prompt tasks (gsm8k, bbh), not {config.problem}")
    try:
        rows = evaluate_instructions(problem, chosen, split, limit, target, scorer=scorer_config(config))
    finally:
        problem.close()
    click.echo(format_rows(rows))
    click.echo(f"results: {target}")
    warn_truncated(max((r.truncated_rate for r in rows), default=None), problem.scorer_max_tokens)


def connection_changes(overrides: dict) -> dict:
    """`--set scorer.KEY=V` (or `llm.KEY=V`) for `--run`: connection settings only (CONNECTION_SETTINGS)."""
    from opro.runner import CONNECTION_SETTINGS, is_connection_key

    changes = {}
    for key, value in overrides.items():
        if not is_connection_key(key, ("scorer", "llm")):
            raise OproError(f"--run keeps the run's settings; --set can change only the scorer's connection "
                            f"({', '.join(f'scorer.{n}' for n in CONNECTION_SETTINGS)}), not {key}")
        changes[key.partition(".")[2]] = value
    return changes
