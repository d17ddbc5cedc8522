"""`opro sweep SWEEP.toml`: a grid of ordinary runs under one parent, on a local process pool or on Ray.

A sweep file names a base task preset, settings for every cell, axes to cross and optional explicit cells:

    name = "tsp-temperature"         # the parent folder: <results>/sweeps/<name>/ (default: the file's stem)
    task = "tsp"                     # the base preset; `task` may also be an axis
    [set]                            # every cell (keys as in `opro run --set`)
    "loop.steps" = 20
    [axes]                           # crossed: one cell per combination
    "loop.temperature" = [0.5, 1.0, 1.5]
    seed = "0-4"                     # a list, or an integer range as in --seeds
    [[cells]]                        # explicit cells, added after the crossed ones
    task = "linreg"
    seed = 0
    [resources]                      # per cell: Ray's resource request; also the embedded model's threads
    num_cpus = 1
    [track]                          # optional: a parent MLflow / W&B run, a child run per cell (docs/tracking.md)
    mlflow = {}

Each cell is a run directory `<parent>/<cell-id>/` (the id spells its values: `seed=0,task=tsp`) whose
config.json records the sweep, the cell and its values under "sweep". The parent holds sweep.json: the
plan and each cell's state, written by the one driver process (a lock keeps a second one out). Running the
same file again resumes the sweep: finished cells are skipped, half-finished ones resume from their last
complete step, failed ones are left alone unless `--retry-failed`. `opro compare` and `opro report` read the
parent like any tree of runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opro.config import build_config
from opro.errors import OproError
from opro.extras import require
from opro.redact import redact, redact_data
from opro.results import (
    LOCK_FILE,
    RUN_ID,
    environment,
    lock_folder,
    prepare_output,
    remove_unstarted,
    write_json_atomic,
)
from opro.settings import MAX_REPEATS, Range, check_type, read_toml
from opro.stats import parse_seeds
from opro.tracking import RECORD, Tracking, track_settings

SWEEP_KEYS = {"name", "task", "description", "results", "set", "axes", "cells", "resources", "track"}
RESOURCE_KEYS = {"num_cpus", "num_gpus", "memory", "resources"}
RESOURCE_LIMITS = {"num_cpus": Range(0, 4096, above=True), "num_gpus": Range(0, 1024),
                   "memory": Range(0, None, above=True)}
#: Cell states in sweep.json: done, running (true only while a driver holds the lock), failed, partial
#: (steps written, not finished) and pending.
STATES = ("done", "running", "failed", "partial", "pending")


@dataclass(frozen=True)
class Cell:
    """One run of the sweep."""

    id: str
    """Its run directory's name under the sweep's parent: the values it sets, `key=value` joined by ","."""
    values: dict[str, Any]
    """The settings this cell varies (its axis values, or an explicit cell's own settings)."""
    overrides: dict[str, Any]
    """Every setting over the task preset: the sweep's [set] plus `values` (without `task`)."""
    task: str
    """The task preset of the cell."""
    steps: int
    """Its planned optimization steps (loop.steps)."""


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file."""

    name: str
    """The parent folder's name under `<results>/sweeps/`."""
    parent: Path
    """`<results>/sweeps/<name>`, absolute."""
    cells: list[Cell]
    """Every cell, crossed ones first, in the order they are started."""
    resources: dict[str, Any] = field(default_factory=dict)
    """Per cell: num_cpus (default 1), num_gpus, memory (bytes), custom Ray resources."""
    source: dict[str, Any] = field(default_factory=dict)
    """The sweep file as parsed, stored in sweep.json."""
    track: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Trackers (backend -> settings, `[track]`): the sweep is a parent run, each cell a child run."""


def read_sweep(path: Path, results_root: str | None = None, name: str | None = None,
               settings: dict[str, Any] | None = None) -> Sweep:
    """Parse and check a sweep file (`settings` go over its [set]); every cell's config is built, and so
    checked, before anything runs."""
    spec = read_toml(Path(path), f"sweep file {path}")
    unknown = sorted(set(spec) - SWEEP_KEYS)
    if unknown:
        raise OproError(f"sweep file {path}: unknown key {unknown[0]!r}; known: {', '.join(sorted(SWEEP_KEYS))}")
    for key in ("name", "task", "description", "results"):
        if key in spec and not isinstance(spec[key], str):
            raise OproError(f"sweep file {path}: {key} must be a string, got {spec[key]!r}")
    resources = spec.get("resources", {})
    if not isinstance(resources, dict) or set(resources) - RESOURCE_KEYS:
        raise OproError(f"sweep file {path}: [resources] takes {', '.join(sorted(RESOURCE_KEYS))}")
    for key, allowed in RESOURCE_LIMITS.items():
        if key in resources:
            allowed.check(f"sweep file {path}: resources.{key}", check_type(f"resources.{key}", resources[key], float))
    if not isinstance(resources.get("resources", {}), dict):
        raise OproError(f"sweep file {path}: resources.resources must be a table of Ray resource amounts")
    name = name or spec.get("name") or Path(path).stem
    if not re.fullmatch(r"[A-Za-z0-9._-]+", str(name)):
        raise OproError(f"sweep name {name!r} must be letters, digits, '.', '_' or '-'")
    if settings:
        spec["set"] = {**_table(spec.get("set", {}), f"{path}: [set]"), **settings}
    root = prepare_output(Path(results_root or spec.get("results", "results")), "results root", folder=True,
                          create=False)
    cells = plan_cells(spec, str(path))
    track = track_settings(spec.get("track"), (), f"sweep file {path}")
    return Sweep(str(name), (root / "sweeps" / str(name)).resolve(), cells, resources, spec, track)


def plan_cells(spec: dict[str, Any], label: str = "sweep") -> list[Cell]:
    """The cells of a parsed sweep file: the product of [axes] (in file order, the last axis fastest), then
    [[cells]]. Each cell's config is built here, so a bad value fails before any run starts."""
    fixed = _table(spec.get("set", {}), f"{label}: [set]")
    axes = _table(spec.get("axes", {}), f"{label}: [axes]")
    for key, values in axes.items():
        if isinstance(values, str) and key in ("seed", "problem.seed"):
            axes[key] = values = parse_seeds(values)
        if not isinstance(values, list) or not values:
            raise OproError(f"{label}: axis {key!r} must be a non-empty list (or a seed range like \"0-4\")")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise OproError(f"{label}: axis {key!r} repeats a value")
    explicit = spec.get("cells", [])
    if not isinstance(explicit, list) or not all(isinstance(c, dict) for c in explicit):
        raise OproError(f"{label}: cells must be an array of tables ([[cells]])")
    count = math.prod(len(values) for values in axes.values()) + len(explicit)
    if count > MAX_REPEATS:
        raise OproError(f"{label}: {count} cells; a sweep has at most {MAX_REPEATS}")
    combos = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())] if axes else []
    combos += [_table(c, f"{label}: [[cells]]") for c in explicit]
    if not combos:
        combos = [{}]
    base_task = spec.get("task")
    cells: list[Cell] = []
    seen: set[str] = set()
    for values in combos:
        task = values.get("task", fixed.get("task", base_task))
        if not isinstance(task, str):
            raise OproError(f"{label}: every cell needs a task (task = \"tsp\", or a task axis)")
        overrides = {k: v for k, v in {**fixed, **values}.items() if k != "task"}
        if "results_root" in overrides:
            raise OproError(f"{label}: results_root is the sweep's; set `results` at the top of the file")
        try:  # a one-line error for any bad key or value, naming the cell
            config = build_config(task, overrides)
        except OproError as error:
            raise OproError(f"{label}: cell {cell_name(values)}: {error}") from None
        cell_id = cell_name(values)
        if cell_id in seen:
            raise OproError(f"{label}: two cells have the same settings: {cell_id}")
        seen.add(cell_id)
        cells.append(Cell(cell_id, values, overrides, task, config.loop.steps))
    return cells


def cell_name(values: dict[str, Any]) -> str:
    """A directory name that spells the cell's values (`loop.temperature=0.5,seed=0,task=tsp`), sorted by
    key; characters other than letters, digits and `._=,+-` become `_`; long names end in a hash."""
    if not values:
        return "base"
    text = ",".join(f"{k}={_plain(redact_data(v))}" for k, v in sorted(values.items()))  # no key in a name
    text = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)
    if len(text) > 120:
        text = text[:100] + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return text


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return Path(value).name.removesuffix(".toml") if ("/" in value or value.endswith(".toml")) else value
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, list | dict) else str(value)


def _table(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OproError(f"{label} must be a table of key = value")
    flat: dict[str, Any] = {}
    for key, item in value.items():  # [set] problem.n = 5 (dotted, unquoted) parses as nested tables
        if isinstance(item, dict) and key in ("loop", "problem", "optimizer", "scorer", "llm"):
            flat.update({f"{key}.{k}": v for k, v in item.items()})
        else:
            flat[key] = item
    return flat


# --- running cells -------------------------------------------------------------------------------------------

def run_cell(parent: str, cell: dict[str, Any], sweep_name: str, threads: int | None, cwd: str) -> dict[str, Any]:
    """Run (or resume, or skip) one cell in a worker process; never raises: a failure is returned as data.

    A cell with summary.json is done; one with state.json resumes from its last complete step; a folder
    killed before its first state.json is started over. `threads` is the embedded model's CPU share.
    """
    started = time.time()
    outcome: dict[str, Any] = {"cell": cell["id"], "host": os.uname().nodename, "pid": os.getpid()}
    try:
        if os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths in settings (TSPLIB files, data) mean what they meant to the driver
        with _cell_lock(Path(parent), cell["id"]):
            summary = _run_or_resume(Path(parent), cell, sweep_name, threads)
    except Exception as error:  # a cell's failure, whatever it is, is recorded and the sweep goes on
        message = redact(str(error)).splitlines()[0] if str(error) else ""  # keys this worker was given, too
        return {**outcome, "state": "failed", "seconds": time.time() - started,
                "error": message if isinstance(error, OproError) else f"{type(error).__name__}: {message}",
                "traceback": redact(traceback.format_exc(limit=20))}
    return {**outcome, "state": "done", "seconds": time.time() - started, "skipped": summary is None,
            **({"stop_reason": summary.get("stop_reason"), "best_score": summary.get("best_score")} if summary else {})}


def _run_or_resume(parent: Path, cell: dict[str, Any], sweep_name: str, threads: int | None) -> dict | None:
    """The cell's summary, or None when it was already done. A tracked sweep (tracking.json in the parent,
    written by the driver) logs the cell as a child of the sweep's tracker run."""
    from opro.runner import resume_run, start_run

    path = parent / cell["id"]
    if (path / "summary.json").is_file():
        return None
    tracked = (parent / RECORD).is_file()
    with Tracking(child_only=True) as tracking:
        on_start, on_step = (tracking.start, tracking.step) if tracked else (None, None)
        if (path / "state.json").is_file():
            return resume_run(path, None, on_start, on_step)[1]
        if path.exists():  # created but killed before its first state.json: start it over
            remove_unstarted(path)
        overrides = dict(cell["overrides"])
        if threads is not None and not any(k in overrides for k in ("optimizer.threads", "llm.threads")):
            overrides["llm.threads"] = threads  # the cell's CPU share, so that cells do not oversubscribe
        record = {"sweep": {"name": sweep_name, "cell": cell["id"], "values": cell["values"]}}
        return start_run(build_config(cell["task"], overrides), cell["id"], on_start, on_step, parent=parent,
                         record_extra=record)[1]


@contextlib.contextmanager
def _cell_lock(parent: Path, cell_id: str) -> Iterator[None]:
    """An exclusive lock on one cell, so that a worker left over from a killed driver (Ray's outlive it by a
    few seconds) finishes its step before a new one resumes the same cell. Blocks until it is free."""
    folder = parent / ".cells"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{cell_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def end_with_driver(driver: int) -> None:
    """A local worker's start: it is terminated when the driver process ends, however it ends (a SIGTERM from
    a job scheduler, a SIGKILL), instead of running its cell on, unseen, beside the next driver. Its completed
    steps stay on disk, as for any kill, and the cell resumes from them."""
    import signal

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != driver:  # the driver ended before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


class LocalPool:
    """`--backend local`: a pool of worker processes (spawned, so no model state is forked)."""

    def __init__(self, workers: int) -> None:
        self.capacity = workers
        self.pool = self._start()
        self.origin: dict[Any, Any] = {}  # future -> the pool it was submitted to

    def _start(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=end_with_driver, initargs=(os.getpid(),))

    def submit(self, *args: Any) -> Any:
        future = self.pool.submit(run_cell, *args)
        self.origin[future] = self.pool
        return future

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        return list(wait(handles, timeout, FIRST_COMPLETED).done)

    def result(self, handle: Any) -> dict[str, Any]:
        from concurrent.futures.process import BrokenProcessPool

        pool = self.origin.pop(handle, None)
        try:
            return handle.result()
        except BrokenProcessPool:  # a worker was killed (out of memory, a signal): a new pool for the rest
            if pool is self.pool:
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._start()
            return {"state": "failed", "error": "the worker process died (killed, or out of memory)"}

    def close(self, interrupted: bool = False) -> None:
        """Shut the pool down; `interrupted` (cells still running: Ctrl-C, kill): end those workers and wait for
        them, so that the driver exits now and the cells' states read afterwards are final."""
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        if interrupted:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=30)


class RayPool:
    """`--backend ray`: one Ray task per cell with the sweep's resource request; `address` joins a cluster,
    else a local Ray instance starts with `workers` CPUs (all of the machine's by default)."""

    def __init__(self, workers: int | None, address: str | None, resources: dict[str, Any]) -> None:
        require("ray", extra="ray", feature="--backend ray")
        import ray

        self.ray = ray
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise OproError(f"cannot start or join Ray ({address or 'local'}): {str(error).splitlines()[0]}") from None
        options = {"num_cpus": resources.get("num_cpus", 1), "num_gpus": resources.get("num_gpus", 0),
                   "max_retries": 2}  # a lost worker or node: the cell resumes from its last complete step
        if "memory" in resources:
            options["memory"] = resources["memory"]
        if "resources" in resources:
            options["resources"] = resources["resources"]
        self.remote = ray.remote(run_cell).options(**options)
        cpus = ray.cluster_resources().get("CPU", 1)
        self.capacity = workers or max(1, int(cpus // max(options["num_cpus"], 1e-9)))

    def submit(self, *args: Any) -> Any:
        return self.remote.remote(*args)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def result(self, handle: Any) -> dict[str, Any]:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayError as error:  # the worker or its node died (after Ray's retries)
            return {"state": "failed", "error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}

    def close(self, interrupted: bool = False) -> None:
        self.ray.shutdown()


# --- the driver -------------------------------------------------------------------------------------------------

def cell_state(parent: Path, cell_id: str, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """A cell's state from disk and sweep.json: done (summary.json), failed (recorded, not retried yet),
    partial (steps written, not finished) or pending; with its last complete step."""
    path = parent / cell_id
    last = -1
    try:
        found = json.loads((path / "state.json").read_text())
        if isinstance(found, dict) and isinstance(found.get("last_step"), int) and found["last_step"] >= -1:
            last = found["last_step"]
    except (OSError, ValueError):
        pass
    if (path / "summary.json").is_file():
        return {"state": "done", "last_step": last}
    if stored and stored.get("state") == "failed":
        return {**stored, "last_step": last}
    return {"state": "partial" if last >= 0 else "pending", "last_step": last}


class SweepDriver:
    """Plans, starts and records the cells of one sweep; the only writer of sweep.json."""

    def __init__(self, sweep: Sweep, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.sweep, self.parent = sweep, sweep.parent
        self.on_event = on_event or (lambda kind, info: None)
        self.lock_handle: Any = None
        self.record: dict[str, Any] = {}

    def open(self) -> None:
        """Create or reopen the parent, take the lock and reconcile sweep.json with the cells on disk."""
        self.parent.mkdir(parents=True, exist_ok=True)
        self.lock_handle = lock_folder(self.parent, "sweep")
        planned = [asdict(c) for c in self.sweep.cells]
        if (self.parent / "sweep.json").is_file():
            self.record = read_record(self.parent)
            stored = {c["id"]: c for c in self.record.get("cells", [])}
            for cell in planned:  # a changed cell under an old id would mix two settings in one folder
                old = stored.get(cell["id"])
                if old is not None and (old["overrides"], old["task"]) != (cell["overrides"], cell["task"]):
                    raise OproError(f"cell {cell['id']} of sweep {self.sweep.name} had other settings when it "
                                    "started; give the changed sweep another name")
        else:
            stored = {}
        # Cells added to the file since are planned too; cells taken out of it stay on disk, unplanned.
        cells = [{**cell, **_state_fields(cell_state(self.parent, cell["id"], stored.get(cell["id"])))}
                 for cell in planned]
        self.record = {
            "name": self.sweep.name, "source": self.sweep.source, "resources": self.sweep.resources,
            "created": self.record.get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
            **environment(), "cells": cells,
        }
        self.save()

    def save(self) -> None:
        write_json_atomic(self.parent / "sweep.json", self.record)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for cell in self.record["cells"]:
            counts[cell["state"]] += 1
        return counts

    def run(self, pool: Any, threads: int | None, retry_failed: bool = False, poll: float = 2.0) -> dict[str, int]:
        """Run every cell that is not done (and failed ones with `retry_failed`), `pool.capacity` at a time."""
        cells = {c["id"]: c for c in self.record["cells"]}
        todo = [c for c in self.record["cells"] if c["state"] in ("pending", "partial", "running")
                or (retry_failed and c["state"] == "failed")]
        for cell in todo:
            cell.update(state="pending" if cell["state"] != "partial" else "partial", error=None)
            cell.pop("traceback", None)
        self.save()
        self.on_event("start", {"todo": len(todo), **self.counts()})
        in_flight: dict[Any, str] = {}
        cwd = os.getcwd()
        try:
            while todo or in_flight:
                while todo and len(in_flight) < pool.capacity:
                    cell = todo.pop(0)
                    args = {k: cell[k] for k in ("id", "values", "overrides", "task")}
                    in_flight[pool.submit(str(self.parent), args, self.sweep.name, threads, cwd)] = cell["id"]
                    cell.update(state="running", started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                    self.save()
                    self.on_event("running", {"cell": cell["id"], **self.counts()})
                for handle in pool.wait(list(in_flight), poll):
                    cell = cells[in_flight.pop(handle)]
                    outcome = pool.result(handle)
                    cell.update({k: v for k, v in outcome.items() if k not in ("cell", "skipped")})
                    cell["last_step"] = cell_state(self.parent, cell["id"])["last_step"]
                    self.save()
                    self.on_event(cell["state"], {"cell": cell["id"], **outcome, **self.counts()})
                self.on_event("poll", {"running": self.running_steps(in_flight.values()), **self.counts()})
        finally:
            pool.close(interrupted=bool(in_flight))
            for cell_id in in_flight.values():  # interrupted: the next run finds them on disk
                cells[cell_id].update(_state_fields(cell_state(self.parent, cell_id)))
            self.save()
        return self.counts()

    def running_steps(self, cell_ids: Any) -> dict[str, int]:
        """The last complete step of each running cell (read from its state.json)."""
        return {cid: cell_state(self.parent, cid)["last_step"] for cid in cell_ids}

    def close(self) -> None:
        if self.lock_handle is not None:
            self.lock_handle.close()


def _state_fields(state: dict[str, Any]) -> dict[str, Any]:
    return {"state": state["state"], "last_step": state["last_step"], **(
        {"error": state.get("error"), "traceback": state.get("traceback")} if state["state"] == "failed" else {})}


def cell_threads(backend: str, workers: int, resources: dict[str, Any]) -> int | None:
    """CPU threads of each cell's embedded model: its share of the machine (local) or its num_cpus (Ray)."""
    if backend == "ray":
        return max(1, int(resources.get("num_cpus", 1)))
    return max(1, (os.cpu_count() or 1) // workers)


def default_workers(resources: dict[str, Any]) -> int:
    """Local pool size: as many cells as the machine has CPUs for (num_cpus each, default 1)."""
    return max(1, int((os.cpu_count() or 1) // max(float(resources.get("num_cpus", 1)), 1.0)))


def run_sweep(plan: Sweep, backend: str = "local", workers: int | None = None, address: str | None = None,
              retry_failed: bool = False, on_event: Callable[[str, dict[str, Any]], None] | None = None
              ) -> dict[str, int]:
    """Open the sweep's parent (taking its lock), run every cell not done on a local pool or Ray, and return
    the cell counts by state. KeyboardInterrupt passes through; completed steps stay on disk."""
    if backend == "ray":  # before the sweep's folder is made
        require("ray", extra="ray", feature="--backend ray")
    driver = SweepDriver(plan, on_event)
    driver.open()
    try:
        with Tracking(plan.track) as tracking:  # the sweep's parent tracker run, before any cell starts
            tracking.open_parent(plan.parent, "sweep", sweep_params(plan))
            size = workers or default_workers(plan.resources)
            pool = RayPool(workers, address, plan.resources) if backend == "ray" else LocalPool(size)
            return driver.run(pool, cell_threads(backend, pool.capacity, plan.resources), retry_failed)
    finally:
        driver.close()


def sweep_params(plan: Sweep) -> dict[str, Any]:
    """The params of a sweep's parent tracker run: its task, its [set] settings and its axes' values."""
    params: dict[str, Any] = {"task": plan.source.get("task"), "cells": len(plan.cells)}
    params.update({f"set.{k}": v for k, v in _table(plan.source.get("set", {}), "[set]").items()})
    params.update({f"axis.{k}": v for k, v in _table(plan.source.get("axes", {}), "[axes]").items()})
    return {k: v for k, v in params.items() if v is not None}


def sweep_active(parent: Path) -> bool:
    """Whether a driver holds the sweep's lock now."""
    try:
        with open(parent / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def read_record(parent: Path) -> dict[str, Any]:
    """A sweep's sweep.json (plan and cell states), checked for the shape the driver and `--status` read."""
    try:
        record = json.loads((parent / "sweep.json").read_text())
    except OSError as error:
        raise OproError(f"no sweep.json in {parent}: {error.strerror}") from None
    except ValueError as error:
        raise OproError(f"unreadable sweep.json in {parent}: {error}") from None
    problem = record_problem(record)
    if problem:
        raise OproError(f"sweep.json in {parent} is not a sweep record: {problem} (move it away: the sweep rebuilds "
                        "it from the cells on disk)")
    return record


def record_problem(record: Any) -> str | None:
    """Why `record` is not a sweep.json (a list, cells of the wrong type, a cell without its id, overrides,
    task, steps or a known state), or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    cells = record.get("cells")
    if not isinstance(cells, list):
        return "cells is not a list" if "cells" in record else "no cells"
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            return f"cell {number} is not an object"
        if not isinstance(cell.get("id"), str) or not RUN_ID.fullmatch(cell["id"]):
            return f"cell {number} has no id (a run directory name)"
        for key, kind in (("overrides", dict), ("task", str), ("steps", int), ("state", str)):
            if not isinstance(cell.get(key), kind) or isinstance(cell.get(key), bool):
                return f"cell {cell['id']} has no {key} ({kind.__name__})"
        if cell["state"] not in STATES:
            return f"cell {cell['id']} has an unknown state {cell['state'][:20]!r} (known: {', '.join(STATES)})"
    return None


def status_table(parent: Path) -> str:
    """The cells of a sweep, one line each: state, steps done of planned, id, error; then the counts."""
    record = read_record(parent)
    active = sweep_active(parent)
    lines, counts = [], dict.fromkeys(STATES, 0)
    for cell in record["cells"]:
        state = cell_state(parent, cell["id"], cell)
        if active and cell["state"] == "running" and state["state"] != "done":
            state["state"] = "running"  # a cell of a dead driver shows as partial or pending
        counts[state["state"]] += 1
        error = f"  {cell.get('error')}" if state["state"] == "failed" else ""
        lines.append(f"{state['state']:8s} {max(state['last_step'], 0):>4}/{cell['steps']:<4} {cell['id']}{error}")
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()) + f" ({len(record['cells'])} cells)")
    return "\n".join(lines)


def print_event(stream: Any = None) -> Callable[[str, dict[str, Any]], None]:
    """A progress view: one line per started, finished or failed cell, and a status line that a terminal
    redraws with each poll (running cells with their last complete step)."""
    stream = stream or sys.stderr
    tty = stream.isatty()

    def show(kind: str, info: dict[str, Any]) -> None:
        counts = (f"done {info['done']} · running {info['running']} · failed {info['failed']} · "
                  f"waiting {info['pending'] + info['partial']}")
        stamp = time.strftime("%H:%M:%S")
        if kind == "poll":
            if tty:
                running = ", ".join(f"{cid} step {max(s, 0)}" for cid, s in info["running"].items())
                stream.write(f"\r\033[K[{stamp}] {counts}" + (f" | {running}" if running else ""))
                stream.flush()
            return
        if kind == "start":
            line = f"{info['todo']} cells to run"
        elif kind == "done":
            line = f"done   {info['cell']} ({info.get('seconds', 0):.0f} s)"
        elif kind == "failed":
            line = f"FAILED {info['cell']}: {info.get('error')}"
        else:
            line = f"start  {info['cell']}"
        stream.write(("\r\033[K" if tty else "") + f"[{stamp}] {line}  [{counts}]\n")
        stream.flush()

    return show
