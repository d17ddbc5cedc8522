"""The run directory: plain files a notebook reads with `pd.read_csv` / `pd.read_json(lines=True)`.

    results/<task>/<run-id>/
        config.json       resolved config, templates, versions, git revision, model identity (no secrets)
        candidates.csv    one row per proposal (and per initial solution, at step 0)
        steps.csv         one row per step (step 0: the initial solutions)
        llm_calls.jsonl   one line per meta-prompt: the messages and the group of raw outputs
        state.json        the last completed step and the byte length of each file after it
        summary.json      written when the run stops
        .lock             flock'ed by the one process writing the run (run, resume, a group); holds its pid

Each step is appended, flushed and fsynced, and only then recorded in state.json (written atomically).
A run killed mid-step is resumed by cutting every file back to the lengths in state.json, so no step is
lost or written twice.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
import types
import typing
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from opro.errors import OproError
from opro.redact import redact, redact_data

LOG_FILES = ("candidates.csv", "steps.csv", "llm_calls.jsonl")
#: A run id (or a group's, or a sweep cell's) is one path component of these characters.
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=,+-]{0,199}")


def check_run_id(run_id: str) -> str:
    """`run_id` when it is one safe path component (letters, digits and `._=,+-`, not starting with `.`)."""
    if not RUN_ID.fullmatch(run_id):
        raise OproError(f"run id {run_id!r} must be one name of letters, digits and ._=,+- (not starting with . "
                        "or -), at most 200 characters")
    return run_id


def prepare_output(path: Path, label: str, folder: bool, create: bool = True) -> Path:
    """Make sure an output `path` can be written before any work is done: its folder (the path itself when
    `folder`, else its parent) must be creatable and take a new file; it is created unless `create` is
    false. One-line OproError otherwise (a path under an existing file, a read-only or virtual file system
    such as /proc). Nothing else is written: the probe is a temporary file, removed at once."""
    path = Path(path).expanduser()
    where = path if folder else path.parent
    existing = next(p for p in [where, *where.parents] if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise OproError(f"{label} {path}: {existing} is a file, not a folder")
    if not folder and path.is_dir():
        raise OproError(f"{label} {path} is a folder; give a file name")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
        if create:
            where.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OproError(f"cannot write {label} {path}: {error.strerror or error}") from None
    return path


#: The lock file of a folder that one process writes at a time (a run, a group's parent, a sweep's parent).
LOCK_FILE = ".lock"


def lock_folder(folder: Path, label: str) -> IO[str]:
    """Take the exclusive lock on `folder` (`fcntl.flock` on its LOCK_FILE, which holds the holder's pid) and
    return the open lock file: the lock lasts until it is closed or the process ends (the kernel releases it
    then, whatever killed the process). Held by another process: a one-line OproError naming its pid, and
    nothing is changed."""
    try:
        handle = open(folder / LOCK_FILE, "a+")
    except OSError as error:
        raise OproError(f"cannot lock {label} {folder}: {error.strerror or error}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise OproError(f"{label} {folder} is being run by another process (pid {holder or 'unknown'}); "
                        "wait for it to finish or stop it") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    except OSError as error:  # e.g. a full disk: the pid is a courtesy, but say why the command stops
        with contextlib.suppress(OSError):  # closing flushes the unwritten pid again
            handle.close()
        raise OproError(f"cannot lock {label} {folder}: {error.strerror or error}") from None
    return handle


@dataclass
class CandidateRow:
    """One proposal. Scores follow the problem's direction (`minimize` in config.json)."""

    step: int
    """Optimization step; 0 holds the random initial solutions."""
    index: int
    """Position of the proposal within its step (0..candidates_per_step-1)."""
    attempt: int
    """0 for the first sample, k for the k-th re-sample of an invalid proposal."""
    seed: int | None
    """Sampling seed of this proposal (empty for initial solutions)."""
    raw_sha256: str
    """First 16 hex digits of the sha256 of the raw LLM text (the text is in llm_calls.jsonl)."""
    solution: str
    """The parsed solution as rendered in the meta-prompt; empty when invalid."""
    valid: bool
    """Whether the text parsed into a valid solution."""
    invalid_reason: str
    """Why it is invalid (empty when valid)."""
    duplicate: bool
    """Valid, but already seen earlier in the run (not scored again)."""
    score: float | None
    """Objective value (empty when invalid)."""
    new_best: bool
    """Strictly better than every earlier solution of the run."""
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """"stop", "length" (cut at max_tokens) or "initial"."""


@dataclass
class StepRow:
    """One step of the loop."""

    step: int
    best_so_far: float
    """Best score over all solutions up to and including this step."""
    n_candidates: int
    """Proposals sampled, re-samples included."""
    n_valid: int
    n_new: int
    """Valid proposals never seen before (the ones scored)."""
    n_resampled: int
    """Re-samples of invalid proposals."""
    prompt_tokens: int
    completion_tokens: int
    n_cached: int
    """Proposals replayed from the LLM-call cache instead of generated."""
    cost_usd: float | None
    """Estimated cost of the step's tokens (cached replays included); empty when the price is unknown."""
    seconds: float
    """Wall time of the step."""
    optimal: bool
    """best_so_far reaches the known optimum."""


CANDIDATE_COLUMNS = [f.name for f in fields(CandidateRow)]
STEP_COLUMNS = [f.name for f in fields(StepRow)]


def environment() -> dict[str, Any]:
    """Versions and the git revision of the code, for config.json."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("opro", "numpy", "scipy", "xllamacpp", "openai", "torch", "transformers", "trl", "peft", "gguf"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {"versions": versions, "git": git_revision(Path(__file__).resolve().parent)}


def git_revision(folder: Path) -> dict[str, Any] | None:
    """The commit and dirty flag of the checkout holding `folder`, or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file and rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as handle:
            json.dump(redact_data(data), handle, indent=2, default=str)  # no key reaches a file
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):  # a full disk: the old file stays as it was, and no .tmp beside it
            tmp.unlink(missing_ok=True)
        raise OproError(f"cannot write {path}: {error.strerror or error}") from None


class RunDir:
    """A run directory being written; see the module docstring for its files."""

    def __init__(self, path: Path, step_extras: tuple[str, ...] = (), candidate_extras: tuple[str, ...] = ()) -> None:
        self.path = path
        self.step_extras = step_extras
        """Columns of steps.csv after STEP_COLUMNS, numbers a problem records (see problems.StepValues)."""
        self.candidate_extras = candidate_extras
        """Columns of candidates.csv after CANDIDATE_COLUMNS, text a proposal method records (opro.methods)."""

    @classmethod
    def create(cls, root: Path, task: str, run_id: str | None, config: dict[str, Any],
               step_extras: tuple[str, ...] = (), candidate_extras: tuple[str, ...] = ()) -> RunDir:
        """A new directory `root/task/run_id` (run_id: time and seed, made unique) with config.json;
        `step_extras` and `candidate_extras` are extra steps.csv and candidates.csv columns (none by default:
        the standard headers)."""
        parent = root / task
        if run_id is not None:
            check_run_id(run_id)
        base = run_id or time.strftime("%Y%m%d-%H%M%S") + f"-seed{config['config']['seed']}"
        path, suffix = parent / base, 1
        while path.exists():
            if run_id and path.is_dir() and not (path / "state.json").exists():
                remove_unstarted(path)  # a start that stopped before its first state.json (e.g. a full disk)
                break
            if run_id:
                raise OproError(f"run directory already exists: {path} (use --resume to continue it)")
            suffix += 1
            path = parent / f"{base}-{suffix}"
        try:
            path.mkdir(parents=True)
        except OSError as error:
            raise OproError(f"cannot create run directory {path}: {error.strerror}") from error
        run = cls(path, tuple(step_extras), tuple(candidate_extras))
        try:
            write_json_atomic(path / "config.json", config)
            steps = STEP_COLUMNS + list(run.step_extras)
            candidates = CANDIDATE_COLUMNS + list(run.candidate_extras)
            for name, columns in (("candidates.csv", candidates), ("steps.csv", steps)):
                (path / name).write_text(",".join(columns) + "\n")
            (path / "llm_calls.jsonl").write_text("")
            run._write_state(last_step=-1)
        except (OSError, OproError) as error:  # e.g. a full disk: the folder goes, so the same command can retry
            with contextlib.suppress(OSError, OproError):
                remove_unstarted(path)
            if isinstance(error, OproError):
                raise
            raise OproError(f"cannot write the run directory {path}: {error.strerror or error}") from None
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run, checked (see `check`) but not yet changed: `restore` cuts it back."""
        run = cls(path)
        for name in ("config.json", "state.json", *LOG_FILES):
            if not (path / name).is_file():
                hint = " (a start that stopped before its first step: run it again without --resume)" if \
                    name == "state.json" and (path / "config.json").is_file() else ""
                raise OproError(f"not a run directory (no {name}): {path}{hint}")
        run.check()
        header = _header_line(path / "steps.csv")
        if header[:len(STEP_COLUMNS)] == STEP_COLUMNS:
            run.step_extras = tuple(header[len(STEP_COLUMNS):])
        header = _header_line(path / "candidates.csv")
        if header[:len(CANDIDATE_COLUMNS)] == CANDIDATE_COLUMNS:
            run.candidate_extras = tuple(header[len(CANDIDATE_COLUMNS):])
        return run

    def check(self) -> dict[str, Any]:
        """state.json, checked against the logs: a `last_step` and the byte length of exactly the log files,
        none longer than its file. A file shorter than its recorded length lost completed steps: that is
        corruption, not a step cut by a kill. Returns the state; raises OproError, changing nothing."""
        state = self.state()
        if not isinstance(state, dict) or set(state) != {"last_step", "lengths"}:
            raise OproError(f"state.json in {self.path} is not a run state (expected last_step and lengths)")
        last_step, lengths = state["last_step"], state["lengths"]
        if not _is_int(last_step) or last_step < -1:
            raise OproError(f"state.json in {self.path}: last_step must be an integer >= -1, got {last_step!r}")
        if not isinstance(lengths, dict) or set(lengths) != set(LOG_FILES):
            names = sorted(lengths) if isinstance(lengths, dict) else lengths
            raise OproError(f"state.json in {self.path}: lengths must name exactly {', '.join(LOG_FILES)}, "
                            f"got {names!r}")
        for name in LOG_FILES:
            length, size = lengths[name], (self.path / name).stat().st_size
            if not _is_int(length) or length < 0:
                raise OproError(f"state.json in {self.path}: the length of {name} must be an integer >= 0, "
                                f"got {length!r}")
            if size < length:
                raise OproError(f"{self.path / name} is shorter than state.json records ({size} < {length} "
                                "bytes): completed steps are missing")
        return state

    def check_logs(self) -> None:
        """The logs up to their recorded lengths, as a resume reads them: each CSV has its header and cells of
        its columns' types, steps.csv holds steps 0..last_step, llm_calls.jsonl one JSON object a line."""
        state = self.check()
        last_step, lengths = state["last_step"], state["lengths"]
        steps = self._checked_rows("steps.csv", StepRow, lengths["steps.csv"])
        candidates = self._checked_rows("candidates.csv", CandidateRow, lengths["candidates.csv"])
        if len(steps) != last_step + 1 or any(int(row["step"]) != i for i, row in enumerate(steps)):
            raise OproError(f"{self.path / 'steps.csv'} does not hold steps 0..{last_step} (state.json's last step)")
        if any(int(row["step"]) > last_step for row in candidates) or (
                last_step >= 0 and not any(row["valid"] == "True" for row in candidates)):
            raise OproError(f"{self.path / 'candidates.csv'} does not match steps 0..{last_step} of state.json")
        for number, line in enumerate(self._text("llm_calls.jsonl", lengths["llm_calls.jsonl"]).splitlines(), 1):
            try:
                if not isinstance(json.loads(line), dict):
                    raise ValueError("not a JSON object")
            except ValueError as error:
                raise OproError(f"{self.path / 'llm_calls.jsonl'} line {number}: {error}") from error

    def _text(self, name: str, length: int) -> str:
        try:
            with open(self.path / name, "rb") as handle:
                return handle.read(length).decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise OproError(f"unreadable {self.path / name}: {error}") from error

    def _checked_rows(self, name: str, record: type, length: int) -> list[dict[str, str]]:
        """The rows of a CSV log, each cell checked against the type of its `record` field."""
        hints = typing.get_type_hints(record)
        where = self.path / name
        try:
            reader = csv.reader(io.StringIO(self._text(name, length), newline=""))
            header = next(reader, None)
            if name == "steps.csv" and self.step_extras:
                hints = {**hints, **dict.fromkeys(self.step_extras, float | None)}
            if name == "candidates.csv" and self.candidate_extras:
                hints = {**hints, **dict.fromkeys(self.candidate_extras, str)}
            if header != list(hints):
                raise OproError(f"{where}: the header is not {','.join(hints)}")
            rows = []
            for row in reader:
                if len(row) != len(header):
                    raise OproError(f"{where} line {reader.line_num}: {len(row)} cells, expected {len(header)}")
                for column, value in zip(header, row, strict=True):
                    if not _fits(value, hints[column]):
                        raise OproError(f"{where} line {reader.line_num}: {column} {value[:40]!r} is not "
                                        f"{_type_name(hints[column])}")
                rows.append(dict(zip(header, row, strict=True)))
        except csv.Error as error:
            raise OproError(f"{where}: malformed CSV: {error}") from error
        if name == "candidates.csv" and any(r["valid"] == "True" and r["score"] == "" for r in rows):
            raise OproError(f"{where}: a valid candidate has no score")
        return rows

    def restore(self) -> None:
        """Cut every log back to its length after the last completed step (dropping a step cut short)."""
        for name, length in self.check()["lengths"].items():
            if (self.path / name).stat().st_size > length:
                with open(self.path / name, "r+b") as handle:
                    handle.truncate(length)

    def config(self) -> dict[str, Any]:
        return json.loads((self.path / "config.json").read_text())

    def update_config(self, record: dict[str, Any]) -> None:
        """Rewrite config.json (a resumed run that was given more steps or a larger budget)."""
        write_json_atomic(self.path / "config.json", record)

    def state(self) -> Any:
        try:
            return json.loads((self.path / "state.json").read_text())
        except (OSError, ValueError) as error:
            raise OproError(f"unreadable state.json in {self.path}: {error}") from error

    def append_step(
        self, candidates: list[CandidateRow], step: StepRow, llm_calls: list[dict[str, Any]],
        extras: dict[str, float | None] | None = None, candidate_extras: list[dict[str, str]] | None = None,
    ) -> None:
        """Append one step to every log, make it durable, then record it as complete. `extras` holds the
        values of `step_extras` (missing ones are empty cells); `candidate_extras`, one dict per candidate,
        those of `candidate_extras` columns."""
        extra_cells = [[str(values.get(c, "")) for c in self.candidate_extras]
                       for values in (candidate_extras or [{}] * len(candidates))]
        row = _csv_rows([step], STEP_COLUMNS)
        if self.step_extras:
            cells = [(extras or {}).get(c) for c in self.step_extras]
            row = row[:-1] + "".join("," + ("" if v is None else repr(float(v))) for v in cells) + "\n"
        try:
            self._append("candidates.csv", _csv_rows(candidates, CANDIDATE_COLUMNS, extra_cells))
            self._append("steps.csv", row)
            self._append("llm_calls.jsonl", "".join(json.dumps(redact_data(c), default=str) + "\n" for c in llm_calls))
            self._write_state(last_step=step.step)
        except OproError as error:  # e.g. a full disk: this step is not recorded, the completed ones are kept
            raise OproError(f"{error}; step {step.step} is not recorded, the steps before it stay in {self.path} "
                            "(free space, then continue with --resume)") from None

    def read_candidates(self) -> list[dict[str, str]]:
        """candidates.csv up to its last completed step (its length in state.json)."""
        return self._read_log("candidates.csv")

    def read_steps(self) -> list[dict[str, str]]:
        """steps.csv up to its last completed step."""
        return self._read_log("steps.csv")

    def _read_log(self, name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self._text(name, self.state()["lengths"][name]), newline="")))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.path / "summary.json", summary)

    def _append(self, name: str, text: str) -> None:
        try:
            with open(self.path / name, "a") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise OproError(f"cannot write {self.path / name}: {error.strerror or error}") from None

    def _write_state(self, last_step: int) -> None:
        lengths = {name: (self.path / name).stat().st_size for name in LOG_FILES}
        write_json_atomic(self.path / "state.json", {"last_step": last_step, "lengths": lengths})


def remove_unstarted(path: Path) -> None:
    """Delete the folder of a run that `RunDir.create` began but that stopped before its first state.json,
    once it is certain to hold only what create writes: config.json, the logs with at most their headers,
    and temporary files of an atomic write. Anything else is someone's data: a one-line OproError, and
    nothing is deleted."""
    written = {"candidates.csv": ",".join(CANDIDATE_COLUMNS) + "\n", "steps.csv": ",".join(STEP_COLUMNS) + "\n",
               "llm_calls.jsonl": ""}
    entries = sorted(path.iterdir())
    for entry in entries:
        if entry.is_symlink() or not entry.is_file() or entry.name not in {*written, "config.json", LOCK_FILE,
                                                                           "config.json.tmp", "state.json.tmp"}:
            raise OproError(f"{path} has no state.json but holds {entry.name}: not an unstarted run, left as it is "
                            "(move it away to start this run again)")
        data = entry.read_bytes()
        for log in ("steps.csv", "candidates.csv"):
            if entry.name == log and data.startswith(written[log][:-1].encode()):
                written[log] = data.decode("utf-8", "replace").split("\n")[0] + "\n"  # with extra columns
        if entry.name in written and not written[entry.name].encode().startswith(data):
            raise OproError(f"{path} has no state.json but its {entry.name} has content: not an unstarted run, "
                            "left as it is (move it away to start this run again)")
        if entry.name == "config.json" and not _is_run_record(data):
            raise OproError(f"{path} has no state.json and its config.json is not a run's: not an unstarted run, "
                            "left as it is (move it away to start this run again)")
    for entry in entries:
        entry.unlink()
    path.rmdir()


def _header_line(path: Path) -> list[str]:
    """The CSV header of `path`: its first line only (bytes after it, e.g. a step cut by a kill, are not read)."""
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        return next(csv.reader([first.decode("utf-8")]), [])
    except UnicodeDecodeError:
        raise OproError(f"{path}: the header is not UTF-8 text") from None


def _is_run_record(data: bytes) -> bool:
    try:
        record = json.loads(data)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("config"), dict)


def _csv_rows(rows: list[Any], columns: list[str], extra_cells: list[list[str]] | None = None) -> str:
    """CSV lines of `rows`' `columns`, each followed by its `extra_cells` when given."""
    lines = []
    for number, row in enumerate(rows):  # text cells pass through opro.redact: no key reaches a file
        cells = ([("" if getattr(row, c) is None else _cell(getattr(row, c))) for c in columns]
                 + redact_data(extra_cells[number] if extra_cells else []))
        # written with "\r\n" so that a cell holding a lone "\r" (model text) is quoted, as readers take it for
        # a line break; the line then ends in "\n" as every other
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(cells)
        lines.append(buffer.getvalue()[:-2] + "\n")
    return "".join(lines)


def _fits(text: str, hint: Any) -> bool:
    """Whether a CSV cell holds a value of the type `hint` (as `_csv_rows` writes it)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if text == "":
        return type(None) in allowed or str in allowed
    for kind in allowed:
        if kind is str or (kind is bool and text in ("True", "False")):
            return True
        try:
            if kind is int and str(int(text)) == text or kind is float and not math.isnan(float(text)):
                return True
        except ValueError:
            continue
    return False


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else redact(value) if isinstance(value, str) else value
