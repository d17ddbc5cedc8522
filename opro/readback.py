"""A run directory read back: `Run` (config, summary, steps and candidates as pandas frames with real dtypes,
the best solution decoded by its problem) and `RunGroup` (a folder of runs). `opro.load` is `load`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opro.config import RunConfig
from opro.errors import OproError
from opro.results import FLAG_COLUMNS

#: Text columns of candidates.csv / steps.csv (the methods' own among them): an empty cell is "", not NaN.
TEXT_COLUMNS = ("raw_sha256", "solution", "invalid_reason", "finish_reason", "operator", "parents", "demos")
#: summary.json fields that must be numbers (or null) for a run to be read.
SUMMARY_NUMBERS = ("best_score", "optimum", "gap_percent", "valid_rate", "cost_usd", "steps_to_optimum", "best_step",
                   "steps_run", "n_unique", "n_candidates", "n_valid", "prompt_tokens", "completion_tokens", "seconds")


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


def read_record(path: Path) -> dict[str, Any]:
    """A run directory's JSON files, checked for the shapes its readers build on: {"path", "config" (config.json),
    "summary" (summary.json, {} if none), "lengths" (state.json's log lengths)}; a one-line OproError else."""
    try:
        record = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
        state = json.loads((path / "state.json").read_text()) if (path / "state.json").is_file() else {}
    except (OSError, ValueError) as error:
        raise OproError(f"unreadable run directory {path}: {error}") from error
    for name, value in (("config.json", record), ("summary.json", summary), ("state.json", state)):
        if not isinstance(value, dict):
            raise OproError(f"{name} is not a JSON object")
    config = record.get("config", record)
    if not isinstance(config, dict) or not isinstance(config.get("problem"), str):
        raise OproError("config.json holds no run config (with its problem)")
    for name, value in (("config", config), ("config.loop", config.get("loop")), ("config.optimizer",
                        config.get("optimizer")), ("config.problem_settings", config.get("problem_settings")),
                        ("instance", record.get("instance")), ("sweep", record.get("sweep")),
                        ("summary.instance", summary.get("instance")), ("state.lengths", state.get("lengths"))):
        if value is not None and not isinstance(value, dict):
            raise OproError(f"{name} in config.json, summary.json or state.json is not a JSON object")
    for key in SUMMARY_NUMBERS:
        value = summary.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise OproError(f"summary.json: {key} is not a number: {value!r}")
    for name, value in (("config.json: seed", config.get("seed")), ("the instance's n", (
            summary.get("instance") or record.get("instance") or {}).get("n"))):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise OproError(f"{name} is not an integer: {value!r}")
    lengths = state.get("lengths") or {}
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53 for v in lengths.values()):
        raise OproError(f"state.json: a log length is not an integer >= 0: {lengths!r}")
    return {"path": path, "config": record, "summary": summary, "lengths": lengths}


def load_run(path: str | Path) -> Run:
    """One run directory read back; a one-line OproError where it is not one."""
    path = Path(path).resolve()
    read = read_record(path)
    record, summary = read["config"], read["summary"] or None
    try:
        steps = read_table(path / "steps.csv")
        candidates = read_table(path / "candidates.csv")
    except (OSError, ValueError) as error:
        raise OproError(f"{path} is not a readable run directory: {error}") from None
    return Run(path, record, summary, steps, candidates)


def run_best(path: Path) -> tuple[RunConfig, str]:
    """A finished run's settings and best solution's text (config.json and summary.json), as `opro eval --run`
    and the paper's reproduction score a run's best instruction."""
    try:
        read = read_record(path)
        config = RunConfig.from_dict(read["config"]["config"])
        best = read["summary"]["best_solution"]
    except (OproError, ValueError, KeyError, TypeError) as error:
        raise OproError(f"not a finished prompt-optimization run: {path} ({error})") from error
    if not isinstance(best, str):
        best = "" if best is None else str(best)
    return config, best


def read_table(path: Path) -> pd.DataFrame:
    """steps.csv or candidates.csv with real dtypes: text columns as str ("" for empty), True/False columns as
    bool, every other column a number (nan for an empty cell)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            continue
        if column in FLAG_COLUMNS:
            frame[column] = frame[column] == "True"
            continue
        numbers = pd.to_numeric(frame[column].replace("", None), errors="coerce")
        if numbers.notna().sum() == (frame[column] != "").sum():  # every non-empty cell is a number
            whole = numbers.dropna()
            frame[column] = numbers.astype("Int64") if len(whole) and (whole % 1 == 0).all() and \
                column in ("step", "index", "attempt", "seed", "n_candidates", "n_valid", "n_new", "n_resampled",
                           "prompt_tokens", "completion_tokens", "n_cached") else numbers.astype(float)
    return frame
