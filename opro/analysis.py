"""Tidy pandas frames of one run or a tree of runs, so that a cross-run study is a `groupby`.

    results = analysis.load("results/tsp")     # a run directory, a group of runs, or any tree of them
    results.runs          one row per run: metadata, loop settings and the summary.json fields
    results.steps         steps.csv of every run (plus `gap_percent` of best_so_far)
    results.candidates    candidates.csv of every run (plus `gap_percent` of each score; the proposal's
                          sampling seed is `sample_seed`, as `seed` is the run's)

Every frame starts with the run's metadata columns (`META_COLUMNS`):
`run` (the run directory relative to the path loaded; its name when that path is the run), `run_group`
(the parent folder of `--seeds/--instances` repeats or of a sweep's cells, else ""), `group` (the
comparison setting, e.g. "tsp n=10", as in `opro compare`), `task`, `problem`, `model` (the optimizer
spec), `method` ("opro " + model), `seed`, `n` (TSP nodes; empty for other problems) and `instance`
(TSPLIB name, `random-n10-s0`, `linreg-w15-b14-s0`).
String metadata is categorical on the large frames. Runs of an `opro sweep` also carry `sweep`, `cell` and
their cell's values (e.g. `loop.temperature`) in the runs frame, and the values that differ within a group
name the method ("opro llamacpp:smollm2 temperature=0.5").

Loading is built for large trees (see benchmarks/analysis_load.py): each log is read up to the byte length
state.json records (a run being written, or killed mid-step, contributes its complete steps only), the
CSV bodies of all runs with the same header are joined into one buffer and parsed once (by pyarrow's
multithreaded reader when pyarrow is installed, else by pandas), and each run's row count comes from
counting the record ends outside quoted fields.
"""

from __future__ import annotations

import importlib.util
import io
import json
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opro.errors import OproError
from opro.readback import TEXT_COLUMNS, read_record
from opro.results import CandidateRow, StepRow

META_COLUMNS = ("run", "run_group", "group", "task", "problem", "model", "method", "seed", "n", "instance")
#: Files that mark a folder of runs: `opro run --seeds/--instances` groups and `opro sweep` parents.
GROUP_FILES = ("group.json", "sweep.json")
#: Loop settings copied from config.json into the runs frame (`steps` becomes `max_steps`).
LOOP_COLUMNS = ("steps", "candidates_per_step", "temperature", "top_k", "num_initial", "max_tokens", "order")


@dataclass
class Results:
    """A tree of runs as tidy frames (see the module docstring for the columns)."""

    runs: pd.DataFrame
    """One row per run, in `run` order."""
    steps: pd.DataFrame
    """One row per step per run."""
    candidates: pd.DataFrame
    """One row per proposal per run (empty when loaded with `candidates=False`)."""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per run id: `path`, the full `config` record (config.json) and `summary` (summary.json, {} if none)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """The runs left out as unreadable: path -> why."""

    def subset(self, run_ids: list[str] | pd.Series) -> Results:
        """The frames of some runs (e.g. `results.subset(results.runs.query("n == 10")["run"])`)."""
        keep = list(dict.fromkeys(run_ids))
        unknown = [r for r in keep if r not in self.records]
        if unknown:
            raise OproError(f"no run {unknown[0]!r}; known: {', '.join(list(self.records)[:5])} ...")

        def pick(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["run"].isin(keep)].reset_index(drop=True) if len(frame) else frame

        return Results(pick(self.runs), pick(self.steps), pick(self.candidates), {r: self.records[r] for r in keep},
                       self.skipped)

    def run(self, run_id: str) -> Results:
        """The frames of one run."""
        return self.subset([run_id])


def find_runs(paths: list[Path] | Path, finished: bool = False) -> list[Path]:
    """Run directories (config.json beside candidates.csv; with `finished`, also summary.json) at or below
    `paths`, sorted."""
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    marker = "summary.json" if finished else "candidates.csv"
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise OproError(f"no such directory: {path}")
        found.update(p.parent for p in [path / marker, *path.rglob(marker)]
                     if p.is_file() and (p.parent / "config.json").is_file())
    if not found:
        what = "finished runs (summary.json)" if finished else "runs (config.json and candidates.csv)"
        raise OproError(f"no {what} under {', '.join(map(str, paths))}")
    return sorted(found)


def load(paths: list[Path] | Path | str, candidates: bool = True, finished: bool = False,
         engine: str = "auto", on_skip: Callable[[Path, str], None] | None = None) -> Results:
    """Load every run at or below `paths` (see `find_runs`) into tidy frames.

    `candidates=False` skips candidates.csv (the largest file); `finished=True` keeps only runs that wrote
    summary.json. `engine` picks the CSV parser (see `parse_csv`). A run that cannot be read (malformed
    JSON or CSV, values of the wrong type) is left out and reported to `on_skip(path, reason)` (default: a
    warning) once the others are read; with no readable run at all, one OproError.
    """
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    dirs = find_runs(paths, finished)
    skip = on_skip or _warn_skipped
    skipped: dict[str, str] = {}

    def drop(path: Path, reason: str) -> None:  # reported once some run is readable (else: one error)
        skipped[str(path)] = reason

    records: dict[str, dict[str, Any]] = {}
    for run_id, path in zip(_run_ids(dirs, paths), dirs, strict=True):
        try:
            records[run_id] = read_record(path)
        except OproError as error:
            drop(path, str(error))
    logs = ("steps.csv", "candidates.csv") if candidates else ("steps.csv",)
    for name in logs:
        _drop_unreadable(records, name, engine, drop)
    rows = []
    for run_id, record in list(records.items()):
        try:
            rows.append(_run_row(run_id, record))
        except (ValueError, TypeError, KeyError, AttributeError) as error:  # a setting of the wrong type
            drop(records.pop(run_id)["path"], f"config.json or summary.json: {type(error).__name__}: {error}")
    if not records:
        first = next(iter(skipped.items()))
        raise OproError(f"no readable run under {', '.join(map(str, paths))} ({len(skipped)} skipped; "
                        f"{first[0]}: {first[1]})")
    for path, reason in skipped.items():
        skip(Path(path), reason)
    runs = pd.DataFrame(rows)
    _name_sweep_methods(runs, records)
    for column in ("seed", "n", "steps_to_optimum", "best_step", "steps_run"):
        if column in runs:
            try:
                runs[column] = pd.to_numeric(runs[column]).astype("Int64")
            except (OverflowError, TypeError, ValueError) as error:  # a damaged record: one line, not a traceback
                raise OproError(f"a run's {column} is not a whole number in range: {error}") from None
    for column in ("optimum", "best_score", "gap_percent", "valid_rate", "cost_usd"):
        if column in runs:
            runs[column] = pd.to_numeric(runs[column]).astype(float)
    dirs = [record["path"] for record in records.values()]
    lengths = [record["lengths"] for record in records.values()]
    steps = _with_meta(_read_logs(dirs, "steps.csv", lengths, engine), runs)
    cands = _with_meta(_read_logs(dirs, "candidates.csv", lengths, engine), runs) if candidates else pd.DataFrame(
        columns=list(META_COLUMNS))
    _fill_unfinished(runs, steps)
    for record in records.values():
        del record["lengths"]
    return Results(runs, steps, cands, records, skipped)


def _warn_skipped(path: Path, reason: str) -> None:
    warnings.warn(f"skipped the unreadable run {path}: {reason}", stacklevel=3)


#: The columns analysis and reports read from each log (older runs may lack others).
LOG_REQUIRED = {"steps.csv": ("step", "best_so_far", "n_candidates", "n_valid", "prompt_tokens",
                              "completion_tokens", "seconds"),
                "candidates.csv": ("step", "score", "valid", "solution")}
#: The type of each column the loop writes (opro.results' row records): numbers, booleans or text.
LOG_TYPES = {"steps.csv": typing.get_type_hints(StepRow), "candidates.csv": typing.get_type_hints(CandidateRow)}


def _log_problem(frame: pd.DataFrame, name: str) -> str | None:
    """Why a parsed log cannot be analysed (a column missing, or holding values of the wrong type), or None."""
    for column in LOG_REQUIRED[name]:
        if column not in frame:
            return f"{name}: no column {column}"
    for column, hint in LOG_TYPES[name].items():
        if column not in frame or not len(frame) or str in typing.get_args(hint) or hint is str:
            continue
        fits = (pd.api.types.is_bool_dtype if hint is bool else pd.api.types.is_numeric_dtype)(frame[column])
        if not fits:
            return f"{name}: column {column} holds values of the wrong type"
    return None


def _header(path: Path) -> list[str]:
    try:
        with open(path, "rb") as handle:
            return handle.readline(65536).decode("utf-8", "replace").strip().split(",")
    except OSError:
        return []


def _drop_unreadable(records: dict[str, dict[str, Any]], name: str, engine: str,
                     drop: Callable[[Path, str], None]) -> None:
    """Leave out the runs whose log `name` does not parse into the columns analysis needs. All runs are
    parsed at once first; only when that fails is each one parsed alone, to find the bad ones."""

    def readable(ids: list[str]) -> str | None:
        try:
            frame, _ = _read_logs([records[i]["path"] for i in ids], name, [records[i]["lengths"] for i in ids],
                                  engine)
        except (OproError, ValueError) as error:
            return str(error).splitlines()[0] if str(error) else type(error).__name__
        return _log_problem(frame, name)

    for run_id in list(records):  # each log starts with a header naming the columns read (a cheap first look)
        header = _header(records[run_id]["path"] / name)
        missing = [c for c in LOG_REQUIRED[name] if c not in header]
        if missing:
            drop(records.pop(run_id)["path"], f"{name}: no header with column {missing[0]}")
    if not records or readable(list(records)) is None:
        return
    for run_id in list(records):
        reason = readable([run_id])
        if reason is not None:
            drop(records.pop(run_id)["path"], reason if name in reason else f"{name}: {reason}")


def load_llm_calls(run_dir: Path | str) -> pd.DataFrame:
    """llm_calls.jsonl of one run, one row per raw output: step, attempt, index, seed, text, tokens."""
    path = Path(run_dir) / "llm_calls.jsonl"
    if not path.is_file():
        raise OproError(f"no llm_calls.jsonl in {run_dir}")
    rows = []
    for line in path.read_text().splitlines():
        try:
            call = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by a kill: the complete calls before it are kept
        rows += [{"step": call["step"], "attempt": call["attempt"], **output} for output in call["outputs"]]
    return pd.DataFrame(rows)


def gap_percent(value: Any, optimum: Any, minimize: Any) -> Any:
    """`opro.scores.gap_percent` over arrays (or scalars): nan where it is None (optimum unknown or zero)."""
    from opro.scores import gap_percent as one_gap

    values, optima, minimizing = np.broadcast_arrays(np.asarray(value, dtype=float), np.asarray(optimum, dtype=float),
                                                     np.asarray(minimize, dtype=bool))
    gaps = [one_gap(float(v), float(o), bool(m)) for v, o, m in zip(values.ravel(), optima.ravel(), minimizing.ravel(),
                                                                     strict=True)]
    return np.array([np.nan if g is None else g for g in gaps], dtype=float).reshape(values.shape)


def group_label(task: str, problem: str, instance: dict[str, Any]) -> str:
    """The comparison setting of a run (the problem's `group_label`): runs in one setting are compared."""
    from opro.problems import known_class

    return known_class(problem).group_label(task, instance)


def _run_ids(dirs: list[Path], roots: list[Path]) -> list[str]:
    """Each run's path relative to the root it was found under ("tsp/r1"; a root that is a run: its name)."""
    ids = []
    for path in dirs:
        root = next(r for r in roots if path == r or r in path.parents)
        ids.append(root.resolve().name if path == root else path.relative_to(root).as_posix())
    return ids if len(set(ids)) == len(ids) else [str(p) for p in dirs]


def _name_sweep_methods(runs: pd.DataFrame, records: dict[str, dict[str, Any]]) -> None:
    """Within each comparison group, the sweep settings that differ between runs (other than seeds, the
    task and the model) become part of `method`: "opro llamacpp:smollm2 temperature=0.5"."""
    values = {run_id: (record["config"].get("sweep") or {}).get("values") or {} for run_id, record in records.items()}
    if not any(values.values()):
        return
    for _, index in runs.groupby("group").groups.items():
        ids = list(runs.loc[index, "run"])
        keys = sorted({k for r in ids for k in values[r]} - {"seed", "problem.seed", "task", "optimizer.spec",
                                                                     "loop.method"})
        varying = [k for k in keys if len({json.dumps(values[r].get(k), sort_keys=True) for r in ids}) > 1]
        for i in index if varying else []:
            setting = values[runs.at[i, "run"]]
            runs.at[i, "method"] += "".join(f" {k.rpartition('.')[2]}={setting.get(k)}" for k in varying)


def _run_row(run_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """One runs-frame row: metadata, loop settings, instance and summary scalars."""
    config = record["config"].get("config", record["config"])
    summary = record["summary"]
    instance = summary.get("instance") or record["config"].get("instance") or {}
    problem = summary.get("problem") or config.get("problem", "")
    task = Path(str(config.get("task", problem))).name.removesuffix(".toml")
    settings = config.get("problem_settings") or {}
    seed = config.get("seed")
    model = (config.get("optimizer") or {}).get("spec", "")
    method = (config.get("loop") or {}).get("method") or "opro"  # loop.method; older runs: OPRO
    path = record["path"]
    if problem == "linreg":
        name = (f"linreg-w{instance.get('w_true', settings.get('w_true', 15)):g}"
                f"-b{instance.get('b_true', settings.get('b_true', 14)):g}-s{settings.get('seed', seed)}")
    else:
        name = instance.get("instance") or task
    row: dict[str, Any] = {
        "run": run_id, "run_group": path.parent.name if any((path.parent / f).is_file() for f in GROUP_FILES) else "",
        "group": group_label(task, problem, instance), "task": task, "problem": problem, "model": model,
        "method": f"{method} {model}", "seed": seed, "n": instance.get("n") if problem == "tsp" else None,
        "instance": name, "scorer": (config.get("scorer") or {}).get("spec"), "finished": bool(summary),
    }
    loop = config.get("loop") or {}
    row.update({("max_steps" if k == "steps" else k): loop.get(k) for k in LOOP_COLUMNS})
    row.update({k: v for k, v in instance.items() if k not in row and k != "optimal_solution"
                and not isinstance(v, dict | list)})
    row.update({k: v for k, v in summary.items() if not isinstance(v, dict | list) and k not in ("problem",)})
    sweep = record["config"].get("sweep") or {}
    row.update(sweep=sweep.get("name", ""), cell=sweep.get("cell", ""))
    row.update({k: v for k, v in (sweep.get("values") or {}).items()
                if k not in row and not isinstance(v, dict | list)})
    row.setdefault("optimum", instance.get("optimum"))
    row.setdefault("minimize", True)
    row["path"] = str(path)
    return row


def parse_csv(data: bytes, columns: list[str], engine: str = "auto") -> pd.DataFrame:
    """One CSV log (header included) as a frame: empty cells of text columns are "", of numbers NaN.

    `engine` "pyarrow" parses with pyarrow's multithreaded reader (quoted newlines allowed), "c" with
    pandas' own; "auto" takes pyarrow when it is installed.
    """
    if engine == "auto":
        engine = "pyarrow" if importlib.util.find_spec("pyarrow") else "c"
    if engine == "c":
        return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""], low_memory=False,
                           dtype={c: str for c in TEXT_COLUMNS if c in columns})
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    table = pa_csv.read_csv(
        pa.BufferReader(data), parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in TEXT_COLUMNS if c in columns}, null_values=[""],
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    for i, column in enumerate(table.schema):  # an all-empty column (e.g. cost_usd) is a float column of NaN
        if pa.types.is_null(column.type):
            table = table.set_column(i, column.name, pa.nulls(len(table), pa.float64()))
    return table.to_pandas()


def _read_logs(dirs: list[Path], name: str, lengths: list[dict[str, int]],
               engine: str = "auto") -> tuple[pd.DataFrame, np.ndarray]:
    """One CSV log of every run parsed as one frame, and the index of the run each row came from."""
    by_header: dict[bytes, list[tuple[int, bytes]]] = {}
    for i, path in enumerate(dirs):
        try:
            with open(path / name, "rb") as handle:
                data = handle.read(lengths[i].get(name, -1))
        except OSError as error:
            raise OproError(f"unreadable {name} in {path}: {error}") from error
        data = data[:data.rfind(b"\n") + 1]  # a row cut by a kill is not a row
        head = data.find(b"\n") + 1
        by_header.setdefault(data[:head], []).append((i, data[head:]))
    frames, codes = [], []
    for header, items in by_header.items():
        if not header:
            continue
        bodies = [body for _, body in items]
        joined = b"".join(bodies)
        columns = header.decode().strip().split(",")
        frame = parse_csv(header + joined, columns, engine)
        counts = _record_counts(joined, [len(b) for b in bodies])
        if counts.sum() != len(frame):
            raise OproError(f"malformed {name}: {len(frame)} rows parsed, {counts.sum()} records counted")
        frames.append(frame)
        codes.append(np.repeat([i for i, _ in items], counts))
    if not frames:
        return pd.DataFrame(), np.zeros(0, dtype=int)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    code = np.concatenate(codes)
    if len(frames) > 1:  # runs written by different versions: back into run order
        order = np.argsort(code, kind="stable")
        frame, code = frame.iloc[order].reset_index(drop=True), code[order]
    for column in TEXT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].fillna("")
    if "seed" in frame:  # the sampling seed of a proposal; `seed` is the run's
        frame = frame.rename(columns={"seed": "sample_seed"})
        frame["sample_seed"] = frame["sample_seed"].astype("Int64")
    return frame, code


def _record_counts(joined: bytes, sizes: list[int]) -> np.ndarray:
    """CSV records in each of the consecutive bodies of `joined`: newlines outside double quotes (a quote
    inside a field is doubled, so the quote count before a record end is even)."""
    if not joined:
        return np.zeros(len(sizes), dtype=int)
    data = np.frombuffer(joined, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if b'"' in joined:
        quotes = np.flatnonzero(data == 34)
        ends = ends[np.searchsorted(quotes, ends) % 2 == 0]
    bounds = np.cumsum([0, *sizes])
    return np.diff(np.searchsorted(ends, bounds))


def _with_meta(loaded: tuple[pd.DataFrame, np.ndarray], runs: pd.DataFrame) -> pd.DataFrame:
    """Prepend the metadata columns of each row's run; add `gap_percent` of its score or best so far."""
    frame, code = loaded
    meta = {}
    for column in META_COLUMNS:
        values = runs[column]
        if column in ("seed", "n"):
            meta[column] = pd.array(values.to_numpy(dtype=object)[code], dtype="Int64")
        else:
            categories = pd.Categorical(values.astype(str))
            meta[column] = pd.Categorical.from_codes(categories.codes[code], categories.categories)
    out = pd.concat([pd.DataFrame(meta), frame.reset_index(drop=True)], axis=1)
    value = "best_so_far" if "best_so_far" in frame else "score"
    if value in frame:
        optimum = pd.to_numeric(runs["optimum"], errors="coerce").to_numpy(dtype=float)[code]
        out["gap_percent"] = gap_percent(frame[value].to_numpy(dtype=float), optimum,
                                         runs["minimize"].fillna(True).to_numpy(dtype=bool)[code])
    return out


def _fill_unfinished(runs: pd.DataFrame, steps: pd.DataFrame) -> None:
    """Runs without summary.json (still running, or killed): best score and steps run from steps.csv."""
    for column in ("best_score", "steps_run", "gap_percent"):
        if column not in runs:
            runs[column] = np.nan
    if runs["finished"].all() or steps.empty:
        return
    last = steps.groupby("run", observed=True).tail(1).set_index("run")
    for i in runs.index[~runs["finished"]]:
        run_id = runs.at[i, "run"]
        if run_id in last.index:
            runs.at[i, "best_score"] = last.at[run_id, "best_so_far"]
            runs.at[i, "steps_run"] = last.at[run_id, "step"]
            runs.at[i, "gap_percent"] = last.at[run_id, "gap_percent"]
