"""Experiment tracking (the `mlflow` and `wandb` extras): each run mirrored to MLflow or W&B as it goes.

`opro run --track mlflow` (or `[track] mlflow = {...}` in a preset or sweep file) logs a run's settings as
params, every steps.csv row as step metrics, its tags (task, method, models, seed, git revision), and at
the end its files and figures as artifacts. A group (--seeds / --instances) or a sweep is a parent tracker
run with a child run per run directory.

The run directory stays the record: a tracker that cannot be used (not installed, unreachable, W&B online
without a key) is one warning line, and the run goes on without it. `tracking.json` in a run directory (and
in a group's or sweep's parent) names each backend's tracker run and its settings, never a secret, so that
`--resume` continues the same tracker run.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.results import write_json_atomic
from opro.tracking.base import BACKENDS, TrackedRun, Tracker, TrackerDown, check_track
from opro.tracking.steps import StepMetrics

RECORD = "tracking.json"
#: Files of a parent folder that a parent tracker run keeps (its runs' folders are their own runs').
PARENT_FILES = ("group.json", "sweep.json")

__all__ = ["BACKENDS", "RECORD", "Tracking", "chain", "check_track", "read_record", "report_to_down", "track_settings"]


def track_settings(table: Any, chosen: tuple[str, ...] | list[str] = (), label: str = "track") -> dict[str, dict]:
    """Backend -> settings: a preset's or sweep file's `[track]` table, checked, plus the backends `--track`
    names (with that table's settings for them, else the defaults)."""
    settings = check_track(table, label)
    for name in chosen:
        if name not in BACKENDS:
            raise OproError(f"--track takes {' or '.join(BACKENDS)}, got {name!r}")
        settings.setdefault(name, {})
    return settings


def read_record(folder: Path) -> dict[str, dict[str, Any]]:
    """A folder's tracking.json (backend -> its tracker run and settings), or {} when it has none."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if k in BACKENDS and isinstance(v, dict)}


def chain(*hooks: Callable[..., None] | None) -> Callable[..., None]:
    """One callback that calls each of `hooks` (None ones skipped) in turn."""
    def call(*args: Any) -> None:
        for hook in hooks:
            if hook is not None:
                hook(*args)
    return call


def _warn(message: str) -> None:
    print(f"opro: warning: {message}", file=sys.stderr, flush=True)


class Tracking:
    """The tracker runs of one command: `start` and `step` are `start_run`'s on_start and on_step hooks; used
    as a context manager, it finishes the last run (artifacts, status) and the parent it opened.

    `settings` (backend -> settings) applies to every run it starts; a resumed run's tracking.json adds the
    backends it was tracked with. A run whose folder's parent holds group.json is a run of a group: the
    group's parent tracker run is opened (or reopened) first, unless `child_only`, where it was opened by
    another process (a sweep's driver) and only its tracking.json is read.
    """

    def __init__(self, settings: dict[str, dict[str, Any]] | None = None,
                 warn: Callable[[str], None] | None = None, child_only: bool = False) -> None:
        self.settings = dict(settings or {})
        self.warn = warn or _warn
        self.child_only = child_only
        self.down: set[str] = set()
        self.parent_folder: Path | None = None
        self.parent_record: dict[str, dict[str, Any]] = {}
        self.parents: dict[str, Tracker] = {}
        self.runs: dict[str, tuple[Tracker, StepMetrics]] = {}
        self.run_path: Path | None = None

    def __enter__(self) -> Tracking:
        return self

    def __exit__(self, kind: type | None, error: object, trace: object) -> None:
        status = "finished" if kind is None else "killed" if _interrupted(kind) else "failed"
        self.finish_run(status)
        self.finish_parent(status)

    # --- parents -----------------------------------------------------------------------------------------

    def open_parent(self, folder: Path, kind: str, params: dict[str, Any] | None = None) -> None:
        """Create (or reopen, from its tracking.json) the parent tracker run of a group or sweep folder."""
        self.parent_folder = folder
        stored = read_record(folder)
        settings = {**{name: _settings(entry, name) for name, entry in stored.items()}, **self.settings}
        for name, options in settings.items():
            tracked = TrackedRun(folder.name, kind, params or {}, {"kind": kind}, stored.get(name))
            opened = self._open(name, options, tracked)
            if opened is not None:
                self.parents[name], self.parent_record[name] = opened
        if self.parent_record:
            write_json_atomic(folder / RECORD, {**stored, **self.parent_record})

    def finish_parent(self, status: str = "finished") -> None:
        """End the parent tracker runs this object opened, with the parent folder's own files as artifacts."""
        if not self.parents or self.parent_folder is None:
            return
        with tempfile.TemporaryDirectory() as scratch:
            for name in PARENT_FILES:
                if (self.parent_folder / name).is_file():
                    (Path(scratch) / name).write_bytes((self.parent_folder / name).read_bytes())
            for name, tracker in list(self.parents.items()):
                self._guard(name, lambda t=tracker: (t.log_files(Path(scratch), []), t.close(status)))
        self.parents = {}

    # --- runs --------------------------------------------------------------------------------------------

    def start(self, run_dir: Any, config: Any) -> None:
        """on_start: finish the previous run of a group, then open (or reopen) this run's tracker runs."""
        self.finish_run("finished")
        path = Path(run_dir.path)
        folder = path.parent
        kind = "sweep" if (folder / "sweep.json").is_file() else "group" if (folder / "group.json").is_file() else ""
        if kind and self.parent_folder != folder:
            if self.child_only:
                self.parent_folder, self.parent_record = folder, read_record(folder)
                self.settings = {**{n: _settings(e, n) for n, e in self.parent_record.items()}, **self.settings}
            else:
                self.open_parent(folder, kind, group_params(folder))
        stored = read_record(path)
        settings = {**{name: _settings(entry, name) for name, entry in stored.items()}, **self.settings}
        if not settings:
            return
        record, params, tags = {}, run_params(config), run_tags(path, config)
        for name, options in settings.items():
            parent = self.parent_record.get(name) if kind else None
            opened = self._open(name, options, TrackedRun(path.name, "run", params, tags, stored.get(name), parent))
            if opened is not None:
                tracker, record[name] = opened
                self.runs[name] = (tracker, StepMetrics(path, from_start=name not in stored))
        self.run_path = path
        if record:
            write_json_atomic(path / RECORD, {**stored, **record})

    def step(self, row: Any = None) -> None:
        """on_step: log every step completed since the last call (read from the run directory)."""
        for name, (tracker, metrics) in list(self.runs.items()):
            self._guard(name, lambda t=tracker, m=metrics: [t.log_metrics(s, v) for s, v in m.read()])

    def finish_run(self, status: str = "finished") -> None:
        """End the current run's tracker runs: summary numbers, files and figures as artifacts, status."""
        if not self.runs or self.run_path is None:
            return
        self.step()
        path, summary = self.run_path, _summary_numbers(self.run_path)
        with tempfile.TemporaryDirectory() as scratch:
            figures = draw_figures(path, Path(scratch))
            for name, (tracker, _) in list(self.runs.items()):
                self._guard(name, lambda t=tracker: (t.log_summary(summary), t.log_files(path, figures),
                                                     t.close(status)))
        self.runs, self.run_path = {}, None

    # --- failures are warnings ---------------------------------------------------------------------------

    def _open(self, name: str, options: dict[str, Any], run: TrackedRun) -> tuple[Tracker, dict] | None:
        if name in self.down:
            return None
        try:
            try:
                importlib.import_module(name)
            except ImportError:
                raise TrackerDown(f"--track {name} needs the {name!r} extra: pip install 'opro[{name}]'") from None
            tracker = _backend(name, options)
            entry = tracker.open(run)
        except Exception as error:  # noqa: BLE001 - any tracker failure is a warning, never a lost run
            self._down(name, error)
            return None
        return tracker, {**options, **entry}

    def _guard(self, name: str, call: Callable[[], Any]) -> None:
        if name in self.down:
            return
        try:
            call()
        except Exception as error:  # noqa: BLE001 - any tracker failure is a warning, never a lost run
            self._down(name, error)

    def _down(self, name: str, error: BaseException) -> None:
        self.down.add(name)
        self.runs.pop(name, None)
        self.parents.pop(name, None)
        reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        self.warn(f"{name} tracking is off: {reason}; the run goes on (its directory is the record)")


def report_to_down(name: str) -> str | None:
    """Why TRL's own `name` integration (`opro rl train --report-to`) cannot log now, or None: its store, from
    `$MLFLOW_TRACKING_URI`, is unreachable, or W&B is online without a key."""
    try:
        if name == "mlflow":
            from opro.tracking.mlflow_tracker import check_reachable

            check_reachable(os.environ.get("MLFLOW_TRACKING_URI", ""))
        elif name == "wandb":
            from opro.tracking.wandb_tracker import check_key

            check_key(os.environ.get("WANDB_MODE") or "online")
    except TrackerDown as error:
        return str(error)
    return None


def _backend(name: str, options: dict[str, Any]) -> Tracker:
    if name == "mlflow":
        from opro.tracking.mlflow_tracker import MlflowTracker

        return MlflowTracker(options)
    from opro.tracking.wandb_tracker import WandbTracker

    return WandbTracker(options)


def _settings(entry: dict[str, Any], name: str) -> dict[str, Any]:
    """The settings part of a tracking.json entry."""
    return {k: v for k, v in entry.items() if k in BACKENDS[name] and isinstance(v, str)}


def _interrupted(kind: type) -> bool:
    return issubclass(kind, KeyboardInterrupt) or kind.__name__ == "Abort"


def run_params(config: Any) -> dict[str, Any]:
    """A RunConfig as flat params: `seed`, `loop.steps`, `optimizer.spec`, `problem.n`, ... (None left out)."""
    data = config.to_dict()
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "description":
            continue
        if isinstance(value, dict):
            prefix = "problem" if key == "problem_settings" else key
            flat.update({f"{prefix}.{k}": v for k, v in value.items() if v is not None and v != {}})
        elif value is not None:
            flat[key] = value
    return flat


def run_tags(path: Path, config: Any) -> dict[str, str]:
    """The tags of a run: task, problem, method, models, seed, git revision, opro version, its folder."""
    tags = {"kind": "run", "task": config.task, "problem": config.problem, "method": config.loop.method,
            "optimizer": config.optimizer.spec, "seed": str(config.seed), "run_dir": str(path.resolve())}
    from opro.problems import known_class

    if config.scorer is not None or known_class(config.problem).uses_scorer:
        tags["scorer"] = (config.scorer or config.optimizer).spec  # a prompt task's scorer defaults to it
    try:
        record = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        record = {}
    git = record.get("git") if isinstance(record, dict) else None
    if isinstance(git, dict) and git.get("commit"):
        tags.update(git_commit=str(git["commit"]), git_dirty=str(bool(git.get("dirty"))).lower())
    version = (record.get("versions") or {}).get("opro") if isinstance(record, dict) else None
    if version:
        tags["opro_version"] = str(version)
    sweep = record.get("sweep") if isinstance(record, dict) else None
    if isinstance(sweep, dict):
        tags.update(sweep=str(sweep.get("name")), cell=str(sweep.get("cell")))
    return tags


def group_params(folder: Path) -> dict[str, Any]:
    """The params of a group's parent tracker run, from its group.json: task, seeds, instances, settings."""
    try:
        group = json.loads((folder / "group.json").read_text())
    except (OSError, ValueError):
        return {}
    params = {k: group.get(k) for k in ("task", "seeds", "instances") if group.get(k) is not None}
    return {**params, **{f"set.{k}": v for k, v in (group.get("overrides") or {}).items()}}


def _summary_numbers(path: Path) -> dict[str, float]:
    """summary.json's top-level numbers (best_score, gap_percent, steps_run, valid_rate, ...)."""
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in summary.items()
            if isinstance(v, int | float) and not isinstance(v, bool)} if isinstance(summary, dict) else {}


def draw_figures(path: Path, folder: Path) -> list[Path]:
    """The run's optimization curve (and its validation curve, for a prompt task that recorded one) as PNGs
    in `folder`; none when the run has too little to draw."""
    figures = []
    try:
        from opro.analysis import load
        from opro.plots import optimization_curve, save

        figures.append(save(optimization_curve(load(path), title=path.name), folder / "curve.png"))
        import csv

        with open(path / "steps.csv", newline="") as handle:
            header = next(csv.reader(handle), [])
        if "validation_of_best" in header:
            from opro.plots import validation_curve

            figures.append(save(validation_curve(path, title=path.name), folder / "validation.png"))
    except Exception:  # noqa: BLE001 - a figure that cannot be drawn is left out; the files are the record
        pass
    return figures
