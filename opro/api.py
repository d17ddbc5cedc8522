"""The Python API: start, resume and read runs from Python, with the engine and run directory of `opro run`.

    import opro
    run = opro.run(task="tsp", seed=0, steps=2, problem__n=6)   # results/tsp/<run-id>/
    run.steps.plot(x="step", y="best_so_far")
    more = opro.resume(run.path, steps=4)
    again = opro.load(run.path)                                  # a Run, or a RunGroup for a --seeds folder
    mine = opro.optimize(MyProblem(), template="mine.meta.txt", steps=3)  # a problem object of your own

Settings are keywords: the short names of `opro run`'s flags (`SHORT_NAMES`), or any preset setting as
`section__name` (`problem__n=6` is `--set problem.n=6`, `loop__resample_rounds=0`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

from opro.config import build_config, keyword_overrides
from opro.errors import OproError
from opro.readback import Run, RunGroup, load, load_run

__all__ = ["Run", "RunGroup", "load", "load_run", "optimize", "resume", "run"]


def run(task: str = "tsp", *, run_id: str | None = None, api_key: str | None = None, **settings: Any) -> Run:
    """Start a run of a preset (a name or a .toml path) with keyword `settings` over it (the flags' names, or
    `section__name`; config.keyword_overrides) and return the finished run, read back."""
    from opro.plan import screen_note
    from opro.runner import start_run

    config = build_config(str(task), keyword_overrides(settings))
    if note := screen_note(config):
        warnings.warn(note, UserWarning, stacklevel=2)
    run_dir, _ = start_run(config, run_id, api_key=api_key)
    return load_run(run_dir.path)


def resume(path: str | Path, *, api_key: str | None = None, **changes: Any) -> Run | RunGroup:
    """Continue a stopped run or group; `changes` may raise `steps` and the budgets (max_tokens_total,
    max_cost, max_evaluated, max_scorer_calls) and change the LLMs' connection (`optimizer__base_url`,
    `scorer__base_url`, `llm__concurrency`, ...: opro.runner.CONNECTION_SETTINGS), as `opro run --resume`
    allows; anything else is refused before the run is touched."""
    from opro.runner import resume_group, resume_run

    changes = {key.replace("__", "."): value for key, value in changes.items()}
    path = Path(path)
    if (path / "group.json").is_file():
        resume_group(path, changes, api_key=api_key)
    else:
        resume_run(path, changes, api_key=api_key)
    return load(path)


def optimize(problem: Any, optimizer: Any = None, method: str = "opro", *, template: str,
             task: str | None = None, run_id: str | None = None, api_key: str | None = None,
             **loop_settings: Any) -> Run:
    """Optimize a problem object built in Python (a dataclass satisfying `opro.Problem`, most simply a
    subclass of `opro.ProblemBase`), with the meta-prompt `template` (a name in prompts/ or a .meta.txt path
    beside its .entry.txt). `optimizer` is a backend spec (`llamacpp:smollm2`, `openai:MODEL`) or an LLM
    object (`opro.llm.LLM`: `generate(requests)`, `describe()`, `close()`).
    Its class is recorded as `module:Class` with its fields as settings, so that `opro.resume` and
    `opro run --resume` continue it where that module is importable."""
    from opro.config import LLMConfig, RunConfig, check_config, checked_config
    from opro.problems.check import check_instance
    from opro.runner import start_run

    cls = type(getattr(problem, "inner", problem))
    if not dataclasses.is_dataclass(cls):
        raise OproError(f"problem {cls.__name__}: must be a @dataclass instance (its fields are the settings)")
    kind = f"{cls.__module__}:{cls.__qualname__}"
    problem = check_instance(kind, problem)  # every hook, before the class is looked up by its name
    instance = problem.inner
    problem_settings = {f.name: getattr(instance, f.name) for f in dataclasses.fields(cls) if f.init}
    overrides = keyword_overrides({**loop_settings, "method": method})
    base = RunConfig(task=task or str(getattr(instance, "name", cls.__name__)), problem=kind, template=template,
                     problem_settings=problem_settings,
                     optimizer=LLMConfig(**({"spec": optimizer} if isinstance(optimizer, str) else {})))
    try:
        data = json.loads(json.dumps(base.to_dict()))  # settings must be JSON values, as config.json stores them
    except (TypeError, ValueError) as error:
        raise OproError(f"problem {kind}: its fields must be JSON values (they are its settings): {error}") from None
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if name and section in ("loop", "optimizer"):
            data[section][name] = value
        elif not name:
            data[key] = value
        else:
            raise OproError(f"opro.optimize takes loop and optimizer settings, not {key!r}")
    config = checked_config(data)
    check_config(config)
    llm = None if optimizer is None or isinstance(optimizer, str) else optimizer
    run_dir, _ = start_run(config, run_id, api_key=api_key, problem=problem, optimizer=llm)
    return load_run(run_dir.path)
