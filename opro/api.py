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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opro.errors import OproError

#: Keyword -> setting, as `opro run`'s flags name them.
SHORT_NAMES = {
    "steps": "loop.steps", "candidates": "loop.candidates_per_step", "temperature": "loop.temperature",
    "top_k": "loop.top_k", "max_tokens": "loop.max_tokens", "method": "loop.method", "optimizer": "optimizer.spec",
    "scorer": "scorer.spec", "threads": "optimizer.threads", "n_ctx": "optimizer.n_ctx", "base_url":
    "optimizer.base_url", "results": "results_root", "seed": "seed", "data": "problem.data",
}
#: candidates.csv and steps.csv columns that hold text (kept as str; an empty cell is "").
TEXT_COLUMNS = ("raw_sha256", "solution", "invalid_reason", "finish_reason")
BOOL_COLUMNS = ("valid", "duplicate", "new_best", "optimal")


@dataclass
class Run:
    """One run directory, read back: its settings, its summary and its tables with real dtypes."""

    path: Path
    record: dict[str, Any]
    """config.json: "config" (the settings), "templates", "instance", "optimizer", versions."""
    summary: dict[str, Any] | None
    """summary.json (None for a run that never finished a summary)."""
    steps: pd.DataFrame
    """steps.csv: one row per step (step int, best_so_far float, optimal bool...)."""
    candidates: pd.DataFrame
    """candidates.csv: one row per proposal (valid/duplicate/new_best bool, score float, solution str...)."""

    @property
    def config(self) -> dict[str, Any]:
        """The run's settings (config.json's "config"): task, problem, problem_settings, seed, loop..."""
        return self.record.get("config", {})

    @property
    def best_score(self) -> float | None:
        return None if self.summary is None else self.summary.get("best_score")

    @property
    def best_solution(self) -> Any:
        """The best solution decoded by its problem (`decode`); its text where the problem cannot be built."""
        text = None if self.summary is None else self.summary.get("best_solution")
        if text is None:
            return None
        try:
            from opro.problems import problem_class

            cls = problem_class(self.config["problem"])
            if cls.uses_scorer:  # an instruction: its text is the solution, no scorer is needed to read it
                return text
            from opro.problems import build_problem

            settings = {**self.config.get("problem_settings", {}), **cls.QUICK_SETTINGS}
            return build_problem(self.config["problem"], settings, int(self.config.get("seed", 0))).decode(text)
        except (OproError, KeyError, ValueError, TypeError):
            return text


@dataclass
class RunGroup:
    """A folder of runs (`--seeds`, `--instances`, a sweep): each run, read back."""

    path: Path
    runs: list[Run] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per run: its name, seed and summary numbers."""
        return pd.DataFrame([{"run": r.path.name, "seed": r.config.get("seed"),
                              **{k: (r.summary or {}).get(k) for k in ("best_score", "gap_percent", "steps_run",
                                                                         "stop_reason")}} for r in self.runs])


def settings_from(keywords: dict[str, Any]) -> dict[str, Any]:
    """Keyword settings as dotted overrides: a short name, or `section__name`."""
    out = {}
    for key, value in keywords.items():
        if key in SHORT_NAMES:
            out[SHORT_NAMES[key]] = value
        elif "__" in key:
            section, _, name = key.partition("__")
            out[f"{section}.{name}"] = value
        else:
            raise OproError(f"unknown setting {key!r}; use one of {', '.join(SHORT_NAMES)} or section__name "
                            "(problem__n=6, loop__resample_rounds=0)")
    if isinstance(out.get("problem.data"), str | Path):
        out["problem.data"] = str(Path(out["problem.data"]).resolve())
    return out


def run(task: str = "tsp", *, run_id: str | None = None, api_key: str | None = None, **settings: Any) -> Run:
    """Start a run of a preset (a name or a .toml path) with `settings` over it; the finished run, read back."""
    from opro.config import build_config
    from opro.run import start_run

    config = build_config(str(task), settings_from(settings))
    run_dir, _ = start_run(config, run_id, api_key=api_key)
    return load_run(run_dir.path)


def resume(path: str | Path, *, api_key: str | None = None, **changes: Any) -> Run | RunGroup:
    """Continue a stopped run or group; `changes` may raise `steps` and the budgets (max_tokens_total,
    max_cost, max_evaluated, max_scorer_calls), as `opro run --resume` allows."""
    from opro.run import RESUMABLE, resume_group, resume_run

    unknown = sorted(set(changes) - set(RESUMABLE))
    if unknown:
        raise OproError(f"resume can only change {', '.join(RESUMABLE)}, not {unknown[0]}")
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
    from opro.run import start_run

    cls = type(getattr(problem, "inner", problem))
    if not dataclasses.is_dataclass(cls):
        raise OproError(f"problem {cls.__name__}: must be a @dataclass instance (its fields are the settings)")
    kind = f"{cls.__module__}:{cls.__qualname__}"
    instance = getattr(problem, "inner", problem)
    problem_settings = {f.name: getattr(instance, f.name) for f in dataclasses.fields(cls) if f.init}
    overrides = settings_from({**loop_settings, "method": method})
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


def load(path: str | Path) -> Run | RunGroup:
    """A run directory read back (a Run), or a folder of run directories (a RunGroup); paths made absolute."""
    path = Path(path).resolve()
    if (path / "config.json").is_file():
        return load_run(path)
    if not path.is_dir():
        raise OproError(f"no run directory at {path}")
    runs = [load_run(p.parent) for p in sorted(path.rglob("config.json"))]
    if not runs:
        raise OproError(f"{path} holds no run directory (no config.json under it)")
    return RunGroup(path, runs)


def load_run(path: str | Path) -> Run:
    """One run directory read back; a one-line OproError where it is not one."""
    path = Path(path).resolve()
    try:
        record = json.loads((path / "config.json").read_text())
        summary_path = path / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        steps = read_table(path / "steps.csv")
        candidates = read_table(path / "candidates.csv")
    except (OSError, ValueError) as error:
        raise OproError(f"{path} is not a readable run directory: {error}") from None
    return Run(path, record, summary, steps, candidates)


def read_table(path: Path) -> pd.DataFrame:
    """steps.csv or candidates.csv with real dtypes: text columns as str ("" for empty), True/False columns as
    bool, every other column a number (nan for an empty cell)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            continue
        if column in BOOL_COLUMNS:
            frame[column] = frame[column] == "True"
            continue
        numbers = pd.to_numeric(frame[column].replace("", None), errors="coerce")
        if numbers.notna().sum() == (frame[column] != "").sum():  # every non-empty cell is a number
            whole = numbers.dropna()
            frame[column] = numbers.astype("Int64") if len(whole) and (whole % 1 == 0).all() and \
                column in ("step", "index", "attempt", "seed", "n_candidates", "n_valid", "n_new", "n_resampled",
                           "prompt_tokens", "completion_tokens", "n_cached") else numbers.astype(float)
    return frame
