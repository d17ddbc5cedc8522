"""Start or resume one run: a RunConfig in, a run directory and its summary out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opro.config import RunConfig, load_templates
from opro.errors import OproError
from opro.llm import build_llm
from opro.loop import optimize
from opro.problems import build_problem
from opro.results import RunDir, StepRow, environment


def task_label(task: str) -> str:
    """The results sub-folder of a task: the preset name, or a preset file's stem."""
    return Path(task).name.removesuffix(".toml")


def start_run(
    config: RunConfig, run_id: str | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Build the problem and the optimizer, create the run directory and run the loop."""
    templates = load_templates(config.template)
    problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
    llm = _build_optimizer(config)
    try:
        record = {
            "config": config.to_dict(),
            "templates": {"meta": templates[0], "entry": templates[1]},
            "instance": problem.describe(),
            "optimizer": llm.describe(),
            **environment(),
        }
        run = RunDir.create(Path(config.results_root), task_label(config.task), run_id, record)
        if on_start:
            on_start(run, config)
        summary = optimize(problem, llm, config.loop, config.seed, templates, run, on_step)
    finally:
        llm.close()
    return run, summary


def resume_run(
    path: Path, steps: int | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Continue a stopped run from its last complete step; `steps` may raise its step limit."""
    if not path.is_dir():
        raise OproError(f"no run directory at {path}")
    run = RunDir.open(path)
    stored = run.config()
    try:
        config = RunConfig.from_dict(stored["config"])
    except (KeyError, TypeError) as error:
        raise OproError(f"config.json in {path} is not a run config: {error}") from error
    if steps is not None:
        if steps < 0:
            raise OproError(f"--steps must be >= 0, got {steps}")
        config = RunConfig.from_dict({**config.to_dict(), "loop": {**config.to_dict()["loop"], "steps": steps}})
    templates = (stored["templates"]["meta"], stored["templates"]["entry"])
    problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
    llm = _build_optimizer(config)
    try:
        if on_start:
            on_start(run, config)
        summary = optimize(problem, llm, config.loop, config.seed, templates, run, on_step)
    finally:
        llm.close()
    return run, summary


def _build_optimizer(config: RunConfig):
    options = config.optimizer
    return build_llm(options.spec, {
        "threads": options.threads, "n_ctx": options.n_ctx, "parallel": options.parallel,
        "cache_prompt": options.cache_prompt, "poll": options.poll,
        "sampling": options.sampling,
    })
