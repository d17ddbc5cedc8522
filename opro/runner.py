"""Start or resume one run: a RunConfig in, a run directory and its summary out."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opro.config import (
    MAX_REPEATS,
    LLMConfig,
    RunConfig,
    build_config,
    checked_config,
    config_templates,
)
from opro.errors import OproError
from opro.llm import LLM, build_llm, price_of_llm
from opro.loop import needs_llm, optimize
from opro.methods import METHOD_COLUMNS
from opro.problems import PromptTask, StepValues, build_problem, check_problem_settings
from opro.results import (
    RunDir,
    StepRow,
    check_run_id,
    environment,
    lock_folder,
    remove_unstarted,
    write_json_atomic,
)


def task_label(task: str) -> str:
    """The results sub-folder of a task: the preset name, or a preset file's stem."""
    return Path(task).name.removesuffix(".toml")


def start_run(
    config: RunConfig, run_id: str | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None, api_key: str | None = None, parent: Path | None = None,
    optimizer: LLM | None = None, record_extra: dict[str, Any] | None = None, problem: Any = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Build the problem and the optimizer, create the run directory and run the loop.

    The run directory is `<results>/<task>/<run-id>`, or `<parent>/<run-id>` for the repeats of a group
    (`--seeds` / `--instances`). `api_key` is used, never stored. `optimizer` is an LLM built by the caller
    (the RL hook's, which it updates between steps) in place of the one config.optimizer describes.
    `record_extra` adds fields to config.json (a sweep's cell and its values). `problem` is an instance built
    by the caller (`opro.optimize`), checked hook by hook, in place of the one config.problem describes.
    """
    templates = config_templates(config)
    with contextlib.ExitStack() as models:  # every model built is shut down, whatever fails after it
        if problem is None:
            problem = build_run_problem(config, api_key, models)
        else:
            from opro.problems.check import check_instance

            problem = check_instance(config.problem, problem)
        llm = optimizer or build_llm_from(config.optimizer, role_key(api_key, "optimizer"))
        models.callback(llm.close)
        record = {
            "config": config.to_dict(),
            "templates": {"meta": templates[0], "entry": templates[1]},
            "instance": problem.describe(),
            "optimizer": llm.describe(),
            **environment(),
            **(record_extra or {}),
        }
        extras = problem.step_columns if isinstance(problem, StepValues) else ()  # steps.csv columns of its own
        columns = METHOD_COLUMNS[config.loop.method]  # candidates.csv columns of the method's own
        if parent is None:
            run = RunDir.create(Path(config.results_root), task_label(config.task), run_id, record, extras, columns)
        else:
            run = RunDir.create(parent.parent, parent.name, run_id, record, extras, columns)
        models.enter_context(contextlib.closing(lock_folder(run.path, "run")))  # one writer at a time
        if isinstance(problem, PromptTask):  # a prompt problem writes per-instruction results there
            problem.attach_run(run.path)
        if on_start:
            on_start(run, config)
        summary = optimize(problem, llm, config.loop, config.seed, templates, run, on_step, price_of_llm(llm))
    return run, summary


#: The loop settings `--resume` may change: how long the run goes on, nothing about how it samples.
RESUMABLE = ("steps", "max_tokens_total", "max_cost", "max_evaluated", "max_scorer_calls")
#: What a resume (`optimizer.KEY`, `scorer.KEY` or `llm.KEY` for both) and `opro eval --run` may change of an
#: LLM: where and how it is reached (a server that moved to another port), not which model it is.
CONNECTION_SETTINGS = ("base_url", "concurrency", "timeout", "max_attempts", "threads", "parallel", "poll", "cache")


def is_connection_key(key: str, roles: tuple[str, ...] = ("optimizer", "scorer", "llm")) -> bool:
    """`ROLE.KEY` names a connection setting (CONNECTION_SETTINGS) of one of `roles` (`llm`: every LLM)."""
    role, _, name = key.partition(".")
    return role in roles and name in CONNECTION_SETTINGS


def resume_run(
    path: Path, changes: dict[str, Any] | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None, api_key: str | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Continue a stopped run from its last complete step; `changes` may raise its step limit or budgets.

    Everything is checked before anything changes (see `open_run`); the logs are cut back to the last
    completed step only once the problem and the optimizer are built. A run with no step left to sample
    (e.g. `--steps` equal to the steps done) only rewrites summary.json, without loading a model.
    """
    run, stored, config = open_run(path)
    resumed = with_changes(config, changes)
    templates = (stored["templates"]["meta"], stored["templates"]["entry"])
    with contextlib.ExitStack() as models:
        models.enter_context(contextlib.closing(lock_folder(path, "run")))  # one writer at a time
        problem = build_run_problem(resumed, api_key, models)
        _check_instance(stored.get("instance"), problem.describe(), path)
        llm = None
        if needs_llm(problem, resumed.loop, run):
            llm = build_llm_from(started_threads(resumed.optimizer, stored.get("optimizer")),
                                 role_key(api_key, "optimizer"))
            models.callback(llm.close)
        run.restore()
        if resumed != config:
            run.update_config({**stored, "config": resumed.to_dict()})
        if isinstance(problem, PromptTask):  # its own files, cut back to the last completed step as the logs are
            problem.attach_run(run.path, run.state()["last_step"])
        if on_start:
            on_start(run, resumed)
        price = price_of_llm(llm) if llm is not None else None
        summary = optimize(problem, llm, resumed.loop, resumed.seed, templates, run, on_step, price)
    return run, summary


def started_threads(options: LLMConfig, described: Any) -> LLMConfig:
    """The optimizer as the run started it: the thread count its start chose (`threads` unset: the cores of
    the machine it started on; "auto": timed at start-up; see LlamaCppLLM) is kept for the resume, since
    llama.cpp's samples depend on it."""
    threads = described.get("threads") if isinstance(described, dict) else None
    if isinstance(options.threads, int) or not isinstance(threads, int) or threads < 1:
        return options
    return dataclasses.replace(options, threads=threads)


def open_run(path: Path) -> tuple[RunDir, dict[str, Any], RunConfig]:
    """A run directory to resume, its config.json record and its RunConfig, all checked and nothing changed:
    state.json against the logs, every cell of the logs, the config's names, types and ranges."""
    if not path.is_dir():
        raise OproError(f"no run directory at {path}")
    run = RunDir.open(path)
    try:
        stored = run.config()
    except (OSError, ValueError) as error:
        raise OproError(f"unreadable config.json in {path}: {error}") from error
    templates = stored.get("templates") if isinstance(stored, dict) else None
    if not isinstance(templates, dict) or not all(isinstance(templates.get(k), str) for k in ("meta", "entry")):
        raise OproError(f"config.json in {path} is not a run record (no config and templates)")
    try:
        config = checked_config(stored.get("config"))
        check_problem_settings(config.problem, dict(config.problem_settings))
    except OproError as error:
        raise OproError(f"config.json in {path}: {error}") from error
    run.check_logs()
    return run, stored, config


def with_changes(config: RunConfig, changes: dict[str, Any] | None) -> RunConfig:
    """`config` with what a resume may change, checked: the loop settings of `RESUMABLE` (bare names) and the
    LLMs' connection settings (`CONNECTION_SETTINGS`, as `optimizer.KEY`, `scorer.KEY` or `llm.KEY` for every
    LLM of the run). None values are left out. A `scorer.KEY` for a run whose scorer is its optimizer's model
    gives the scorer a section of its own: the optimizer's, with the change."""
    changes = {k: v for k, v in (changes or {}).items() if v is not None}
    if not changes:
        return config
    data = config.to_dict()
    loop = {}
    for key, value in changes.items():
        role, _, name = key.partition(".")
        if key in RESUMABLE:
            loop[key] = value
        elif is_connection_key(key):
            roles = ["optimizer", "scorer"] if role == "llm" else [role]
            for each in roles:
                if data.get(each) is not None or role == "scorer":
                    data[each] = {**(data.get(each) or data["optimizer"]), name: value}
        else:
            raise OproError(f"a resume can only change {', '.join(RESUMABLE)} and the LLMs' connection "
                            f"(optimizer.KEY or scorer.KEY, KEY one of {', '.join(CONNECTION_SETTINGS)}), not {key}")
    return checked_config({**data, "loop": {**data["loop"], **loop}})


def _check_instance(stored: Any, instance: dict[str, Any], path: Path) -> None:
    """The problem config.json describes now is the one the run started on: the same fields in its instance
    record, with the same scalar values (a tour of equal length may stand for the optimal one)."""
    if stored is None:
        return
    same = isinstance(stored, dict) and set(stored) == set(instance)
    for key, value in instance.items() if same else ():
        if isinstance(value, float) and isinstance(stored[key], int | float):
            same = same and math.isclose(value, stored[key], rel_tol=1e-9)
        elif isinstance(value, str | int | bool | None) and key != "optimal_solution":
            same = same and value == stored[key]
    if not same:
        raise OproError(f"config.json in {path} describes another problem than the run was started on "
                        "(its instance record differs)")


def build_run_problem(config: RunConfig, api_key: str | None = None,
                      closing: contextlib.ExitStack | None = None):
    """The problem; a prompt problem gets its scorer LLM here (see `scorer_config`). With `closing`, the
    problem is closed (its scorer shut down) when that stack exits."""
    problem = build_problem(config.problem, dict(config.problem_settings), config.seed)
    if closing is not None:
        closing.callback(_close_problem, problem)
    if isinstance(problem, PromptTask) and problem.uses_scorer:
        if "screen_top_k" not in config.problem_settings:  # --screen's k is the meta-prompt's top-k
            problem.screen_top_k = config.loop.top_k
        problem.use_scorer(build_llm_from(scorer_config(config), role_key(api_key, "scorer")))
    elif config.scorer is not None:
        raise OproError(f"the {config.problem} problem scores candidates itself; a scorer LLM is for prompt "
                        "optimization tasks")
    return problem


def scorer_config(config: RunConfig) -> LLMConfig:
    """The scorer of a prompt task: `--scorer` (scorer.spec), else the optimizer's model and options, so that
    `opro run --task gsm8k` works with the one default model (llamacpp:smollm2) in both roles."""
    return config.scorer if config.scorer is not None else config.optimizer


def _close_problem(problem) -> None:
    if isinstance(problem, PromptTask):  # a prompt problem's scorer LLM
        problem.close()


def role_key(api_key: Any, role: str) -> str | None:
    """The API key of one role: every `api_key` parameter here is one key for every LLM of the run, or a pair
    (the optimizer's, the scorer's) from `--api-key` and `--scorer-api-key`. Used, never stored."""
    if isinstance(api_key, tuple):
        return api_key[0] if role == "optimizer" else api_key[1]
    return api_key


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
    try:
        lock = lock_folder(parent, "run group")
        try:
            write_json_atomic(parent / "group.json", {
                "task": task, "overrides": {k: v for k, v in overrides.items() if v is not None},
                "seeds": seeds, "instances": instances, "runs": [run_id for run_id, _ in plan],
            })
        except BaseException:
            lock.close()
            raise
    except OproError:  # e.g. a full disk: the folder made just above goes, so the same command can run again
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():  # at most a lock file: the temporary file is gone already
                if entry.name == ".lock":
                    entry.unlink()
            parent.rmdir()
        raise
    with contextlib.closing(lock):
        return parent, _finish_group(parent, plan, configs, {}, on_start, on_step, api_key)


def resume_group(
    parent: Path, changes: dict[str, Any] | None = None, on_start: Callable[[RunDir, RunConfig], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None, api_key: str | None = None,
) -> tuple[Path, list[tuple[RunDir, dict[str, Any]]]]:
    """Finish every run of a group: resume the started ones, start the others."""
    with contextlib.closing(lock_folder(parent, "run group")):
        return _resume_group(parent, changes, on_start, on_step, api_key)


def _resume_group(parent, changes, on_start, on_step, api_key):
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
            remove_unstarted(path)
        done.append(start_run(with_changes(config, changes), run_id, on_start, on_step, api_key, parent=parent))
    return done
