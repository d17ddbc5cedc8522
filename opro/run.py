"""Start or resume one run: a RunConfig in, a run directory and its summary out."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opro.config import (
    MAX_REPEATS,
    LLMConfig,
    LoopConfig,
    RunConfig,
    build_config,
    check_run_ranges,
    check_type,
    load_templates,
)
from opro.errors import OproError
from opro.llm import LLM, build_llm, price_of_llm
from opro.loop import optimize
from opro.problems import build_problem
from opro.results import RunDir, StepRow, check_run_id, environment, write_json_atomic


def task_label(task: str) -> str:
    """The results sub-folder of a task: the preset name, or a preset file's stem."""
    return Path(task).name.removesuffix(".toml")


def start_run(
    config: RunConfig, run_id: str | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None, api_key: str | None = None, parent: Path | None = None,
    optimizer: LLM | None = None, record_extra: dict[str, Any] | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Build the problem and the optimizer, create the run directory and run the loop.

    The run directory is `<results>/<task>/<run-id>`, or `<parent>/<run-id>` for the repeats of a group
    (`--seeds` / `--instances`). `api_key` is used, never stored. `optimizer` is an LLM built by the caller
    (the RL hook's, which it updates between steps) in place of the one config.optimizer describes.
    `record_extra` adds fields to config.json (a sweep's cell and its values).
    """
    templates = load_templates(config.template)
    problem = build_run_problem(config, api_key)
    llm = optimizer or build_llm_from(config.optimizer, api_key)
    try:
        record = {
            "config": config.to_dict(),
            "templates": {"meta": templates[0], "entry": templates[1]},
            "instance": problem.describe(),
            "optimizer": llm.describe(),
            **environment(),
            **(record_extra or {}),
        }
        if parent is None:
            run = RunDir.create(Path(config.results_root), task_label(config.task), run_id, record)
        else:
            run = RunDir.create(parent.parent, parent.name, run_id, record)
        if hasattr(problem, "attach_run"):  # a prompt problem writes per-instruction results there
            problem.attach_run(run.path)
        if on_start:
            on_start(run, config)
        summary = optimize(problem, llm, config.loop, config.seed, templates, run, on_step, price_of_llm(llm))
    finally:
        llm.close()
        _close_problem(problem)
    return run, summary


#: The loop settings `--resume` may change: how long the run goes on, nothing about how it samples.
RESUMABLE = ("steps", "max_tokens_total", "max_cost")


def resume_run(
    path: Path, changes: dict[str, Any] | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None, api_key: str | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Continue a stopped run from its last complete step; `changes` may raise its step limit or budgets."""
    if not path.is_dir():
        raise OproError(f"no run directory at {path}")
    run = RunDir.open(path)
    stored = run.config()
    try:
        config = RunConfig.from_dict(stored["config"])
    except (KeyError, TypeError) as error:
        raise OproError(f"config.json in {path} is not a run config: {error}") from error
    changes = {k: v for k, v in (changes or {}).items() if v is not None}
    if changes:
        unknown = sorted(set(changes) - set(RESUMABLE))
        if unknown:
            raise OproError(f"--resume can only change {', '.join(RESUMABLE)}, not {unknown[0]}")
        for key in changes:
            check_type(f"loop.{key}", changes[key], typing.get_type_hints(LoopConfig)[key])
        loop = {**config.to_dict()["loop"], **changes}
        config = RunConfig.from_dict({**config.to_dict(), "loop": loop})
        check_run_ranges(config)
        run.update_config({**stored, "config": config.to_dict()})
    templates = (stored["templates"]["meta"], stored["templates"]["entry"])
    problem = build_run_problem(config, api_key)
    llm = build_llm_from(config.optimizer, api_key)
    try:
        if hasattr(problem, "attach_run"):
            problem.attach_run(run.path)
        if on_start:
            on_start(run, config)
        summary = optimize(problem, llm, config.loop, config.seed, templates, run, on_step, price_of_llm(llm))
    finally:
        llm.close()
        _close_problem(problem)
    return run, summary


def build_run_problem(config: RunConfig, api_key: str | None = None):
    """The problem; a prompt problem gets its scorer LLM here (see `scorer_config`)."""
    problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
    if getattr(problem, "uses_scorer", False):
        if "screen_top_k" not in config.problem_settings:  # --screen's k is the meta-prompt's top-k
            problem.screen_top_k = config.loop.top_k
        problem.use_scorer(build_llm_from(scorer_config(config), api_key))
    elif config.scorer is not None:
        raise OproError(f"the {config.problem} problem scores candidates itself; a scorer LLM is for prompt "
                        "optimization tasks")
    return problem


def scorer_config(config: RunConfig) -> LLMConfig:
    """The scorer of a prompt task: `--scorer` (scorer.spec), else the optimizer's model and options, so that
    `opro run --task gsm8k` works with the one default model (llamacpp:smollm2) in both roles."""
    return config.scorer if config.scorer is not None else config.optimizer


def _close_problem(problem) -> None:
    if hasattr(problem, "close"):  # a prompt problem's scorer LLM
        problem.close()


def build_llm_from(options: LLMConfig, api_key: str | None = None) -> LLM:
    """The LLM an LLMConfig describes, behind the call cache unless `cache` is false."""
    values = {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.name != "spec"}
    values["api_key"] = api_key
    return build_llm(options.spec, values)


def plan_group(seeds: list[int], instances: int | None) -> list[tuple[str, dict[str, Any]]]:
    """(run id, overrides) of each repeat: every seed, on each of `instances` instances (problem seeds
    0..K-1) when given; at most MAX_REPEATS of them."""
    if instances is not None and instances < 1:
        raise OproError(f"--instances must be >= 1, got {instances}")
    if len(seeds) * (instances or 1) > MAX_REPEATS:
        raise OproError(f"a group has at most {MAX_REPEATS} runs; {len(seeds)} seeds x {instances or 1} instances "
                        f"is {len(seeds) * (instances or 1)}")
    if instances is None:
        return [(f"seed{s}", {"seed": s}) for s in seeds]
    return [(f"inst{k}-seed{s}", {"seed": s, "problem.seed": k}) for k in range(instances) for s in seeds]


def run_group(
    task: str, overrides: dict[str, Any], seeds: list[int], instances: int | None, group_id: str | None = None,
    on_start: Callable[[RunDir, RunConfig], None] | None = None, on_step: Callable[[StepRow], None] | None = None,
    api_key: str | None = None,
) -> tuple[Path, list[tuple[RunDir, dict[str, Any]]]]:
    """Repeats of one configuration, one run directory each under `<results>/<task>/<group-id>/`.

    group.json in the parent lists the planned runs, so `resume_group` can finish the ones a stop cut
    short and start the ones never begun.
    """
    plan = plan_group(seeds, instances)
    configs = [build_config(task, {**overrides, **extra}) for _, extra in plan]  # all checked before any runs
    first = configs[0]
    group_id = check_run_id(group_id) if group_id else time.strftime("%Y%m%d-%H%M%S") + f"-x{len(plan)}"
    parent = Path(first.results_root) / task_label(task) / group_id
    if parent.exists():
        raise OproError(f"run group already exists: {parent} (use --resume to continue it)")
    parent.mkdir(parents=True)
    write_json_atomic(parent / "group.json", {
        "task": task, "overrides": {k: v for k, v in overrides.items() if v is not None},
        "seeds": seeds, "instances": instances, "runs": [run_id for run_id, _ in plan],
    })
    return parent, _finish_group(parent, plan, configs, {}, on_start, on_step, api_key)


def resume_group(
    parent: Path, changes: dict[str, Any] | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None, api_key: str | None = None,
) -> tuple[Path, list[tuple[RunDir, dict[str, Any]]]]:
    """Finish every run of a group: resume the started ones, start the others."""
    try:
        group = json.loads((parent / "group.json").read_text())
        plan = plan_group(group["seeds"], group["instances"])
        configs = [build_config(group["task"], {**group["overrides"], **extra}) for _, extra in plan]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OproError(f"unreadable group.json in {parent}: {error}") from error
    return parent, _finish_group(parent, plan, configs, changes or {}, on_start, on_step, api_key)


def _finish_group(parent, plan, configs, changes, on_start, on_step, api_key):
    done = []
    for (run_id, _), config in zip(plan, configs, strict=True):
        path = parent / run_id
        if (path / "state.json").is_file():
            done.append(resume_run(path, changes, on_start, on_step, api_key))
            continue
        if path.exists():  # created but killed before its first state.json: start it over
            shutil.rmtree(path)
        if changes:
            config = RunConfig.from_dict({**config.to_dict(), "loop": {**config.to_dict()["loop"], **changes}})
        done.append(start_run(config, run_id, on_start, on_step, api_key, parent=parent))
    return done
