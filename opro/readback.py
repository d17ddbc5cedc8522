"""A run directory read back: `Run` (config, summary, steps and candidates as pandas frames with real dtypes,
the best solution decoded by its problem) and `RunGroup` (a folder of runs). `opro.load` is `load`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opro.errors import OproError

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
